META = {
    "env_id": "env_transit",
    "env_class_name": "TransitNetwork",
    "environment_summary": "A city transit network as a graph",
    "environment_introduction": (
        "This environment is a city's transit network. Stations link to each other both ways, lines run "
        "through shared stations, and riders book trips along the fewest-stops route. Operators can add "
        "links and close stations for works."
    ),
    "constraints_rules": [
        "Routes only pass through open stations.",
        "A trip's fare is 2 plus 1 for every zone boundary crossed.",
    ],
}

BASE = {
    "network": {
        "stations": {
            "CEN": {"name": "Central", "zone": 1}, "MKT": {"name": "Market", "zone": 1},
            "PRK": {"name": "Park", "zone": 2}, "UNI": {"name": "University", "zone": 2},
            "HBR": {"name": "Harbour", "zone": 3}, "AIR": {"name": "Airport", "zone": 4},
        },
        "links": [["CEN", "MKT"], ["MKT", "PRK"], ["CEN", "UNI"], ["UNI", "PRK"], ["PRK", "HBR"], ["HBR", "AIR"]],
        "lines": {"red": ["CEN", "MKT", "PRK", "HBR", "AIR"], "blue": ["CEN", "UNI", "PRK"]},
    },
}

SCENARIOS = [
    {
        "task_id": "1001-080000",
        "task": (
            "Market station is closing for works today. Close it, then book Dana a trip from Central to the "
            "Airport on whatever route still works, and tell me the fare. Also book Eli from University to "
            "Harbour, and let me know which stops of the red line are still open after the closure."
        ),
        "checks": [
            ("Is Market closed, and in the set of closed stations?", '''
def check_func(final_state):
    market = final_state["stations"]["MKT"]
    return market.open is False and market in final_state["closed"]
'''),
            ("Does Dana's trip avoid Market, through the network's own Station objects?", '''
def check_func(final_state):
    trip = next(t for t in final_state["trips"] if t["rider"] == "Dana")
    return [s.code for s in trip["path"]] == ["CEN", "UNI", "PRK", "HBR", "AIR"] and \\
        all(s is final_state["stations"][s.code] for s in trip["path"]) and trip["fare"] == 5
'''),
            ("Is Harbour the busiest station, the very object on the red line?", '''
def check_func(final_state):
    busiest = final_state["busiest"]
    return busiest.code == "HBR" and busiest is final_state["lines"]["red"].stops[3]
'''),
        ],
        "solution": [
            ("close_station", {"code": "MKT"}),
            ("route", {"origin": "CEN", "destination": "AIR"}),
            ("plan_trip", {"rider": "Dana", "origin": "CEN", "destination": "AIR"}),
            ("plan_trip", {"rider": "Eli", "origin": "UNI", "destination": "HBR"}),
            ("line_stops", {"line": "red"}),
            ("close_station", {"code": "MKT"}),
        ],
    },
    {
        "task_id": "1001-093000",
        "task": (
            "We opened a new link between University and Harbour. Add it to the network, show me the "
            "neighbours of University afterwards, and book Fay a trip from Central to Harbour on the "
            "shortest route; close the Airport too, since its tunnel is flooded, and list every station."
        ),
        "checks": [
            ("Are University and Harbour linked both ways?", '''
def check_func(final_state):
    uni, hbr = final_state["stations"]["UNI"], final_state["stations"]["HBR"]
    return hbr in uni.links and uni in hbr.links
'''),
            ("Does Fay's trip go Central, University, Harbour?", '''
def check_func(final_state):
    trip = final_state["trips"][0]
    return trip["rider"] == "Fay" and [s.code for s in trip["path"]] == ["CEN", "UNI", "HBR"]
'''),
            ("Is the Airport closed now, and was it open at the start?", '''
def check_func(final_state):
    return initial_state["stations"]["AIR"].open and not final_state["stations"]["AIR"].open
'''),
        ],
        "solution": [
            ("add_link", {"a": "UNI", "b": "HBR"}),
            ("neighbors", {"code": "UNI"}),
            ("plan_trip", {"rider": "Fay", "origin": "CEN", "destination": "HBR"}),
            ("close_station", {"code": "AIR"}),
            ("route", {"origin": "CEN", "destination": "AIR"}),
            ("list_stations", {}),
            ("add_link", {"a": "UNI", "b": "HBR"}),
        ],
    },
]
