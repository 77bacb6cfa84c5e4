"""A transit network as a graph of shared objects: links both ways (cycles), lines and trips sharing stations."""

from typing import Dict, List, Optional, Set


class Station:
    """A station: code, name, fare zone, open or closed, and the Station objects it links to."""

    def __init__(self, code: str, name: str, zone: int) -> None:
        self.code = code
        self.name = name
        self.zone = zone
        self.open = True
        self.links: List["Station"] = []


class Line:
    """A line: a name and its stops, the same Station objects the network holds."""

    def __init__(self, name: str, stops: List[Station]) -> None:
        self.name = name
        self.stops = stops


class TransitNetwork:
    def __init__(self, config: Optional[dict] = None) -> None:
        network = (config or {}).get("network", {})
        self.stations: Dict[str, Station] = {code: Station(code, s["name"], s["zone"])
                                             for code, s in network.get("stations", {}).items()}
        for a, b in network.get("links", []):
            self._link(self.stations[a], self.stations[b])
        self.lines: Dict[str, Line] = {name: Line(name, [self.stations[c] for c in stops])
                                       for name, stops in network.get("lines", {}).items()}
        self.closed: Set[Station] = set()
        self.trips: List[dict] = []
        self.busiest: Optional[Station] = None

    def _link(self, a: Station, b: Station) -> None:
        a.links.append(b)
        b.links.append(a)

    def _route(self, origin: Station, destination: Station) -> Optional[List[Station]]:
        previous: Dict[str, Optional[Station]] = {origin.code: None}
        frontier = [origin]
        while frontier:
            following = []
            for station in frontier:
                if station is destination:
                    path = [station]
                    while previous[path[-1].code] is not None:
                        path.append(previous[path[-1].code])
                    return list(reversed(path))
                for nxt in sorted(station.links, key=lambda s: s.code):
                    if nxt.open and nxt.code not in previous:
                        previous[nxt.code] = station
                        following.append(nxt)
            frontier = following
        return None

    def list_stations(self) -> dict:
        """All stations by code with name, zone and whether they are open."""
        return {"success": True, "data": [{"code": s.code, "name": s.name, "zone": s.zone, "open": s.open}
                                          for s in sorted(self.stations.values(), key=lambda s: s.code)]}

    def neighbors(self, code: str) -> dict:
        """The codes of the stations linked to a station."""
        station = self.stations.get(code)
        if station is None:
            return {"success": False, "error": f"no station {code}"}
        return {"success": True, "data": sorted(s.code for s in station.links)}

    def add_link(self, a: str, b: str) -> dict:
        """Link two stations both ways."""
        if a not in self.stations or b not in self.stations or a == b:
            return {"success": False, "error": "both stations must exist and differ"}
        if self.stations[b] in self.stations[a].links:
            return {"success": False, "error": f"{a} and {b} are already linked"}
        self._link(self.stations[a], self.stations[b])
        return {"success": True, "message": f"linked {a} and {b}"}

    def close_station(self, code: str) -> dict:
        """Close a station: routes avoid it."""
        station = self.stations.get(code)
        if station is None or not station.open:
            return {"success": False, "error": f"{code} is not an open station"}
        station.open = False
        self.closed.add(station)
        return {"success": True, "message": f"{station.name} closed"}

    def route(self, origin: str, destination: str) -> dict:
        """The fewest-stops route between two open stations, as codes."""
        if origin not in self.stations or destination not in self.stations:
            return {"success": False, "error": "unknown station"}
        path = self._route(self.stations[origin], self.stations[destination])
        if path is None:
            return {"success": False, "error": f"no route from {origin} to {destination}"}
        return {"success": True, "data": [s.code for s in path]}

    def plan_trip(self, rider: str, origin: str, destination: str) -> dict:
        """Book a trip for a rider along the fewest-stops route; the fare is 2 plus 1 per zone crossed."""
        if origin not in self.stations or destination not in self.stations:
            return {"success": False, "error": "unknown station"}
        path = self._route(self.stations[origin], self.stations[destination])
        if path is None:
            return {"success": False, "error": f"no route from {origin} to {destination}"}
        fare = 2 + sum(abs(path[i].zone - path[i + 1].zone) for i in range(len(path) - 1))
        self.trips.append({"rider": rider, "path": path, "fare": fare})
        counts: Dict[str, int] = {}
        for trip in self.trips:
            for station in trip["path"]:
                counts[station.code] = counts.get(station.code, 0) + 1
        self.busiest = self.stations[max(sorted(counts), key=lambda c: counts[c])]
        return {"success": True, "data": {"path": [s.code for s in path], "fare": fare}}

    def line_stops(self, line: str) -> dict:
        """The stops of a line, in order, with whether each is open."""
        found = self.lines.get(line)
        if found is None:
            return {"success": False, "error": f"no line {line}"}
        return {"success": True, "data": [(s.code, s.open) for s in found.stops]}
