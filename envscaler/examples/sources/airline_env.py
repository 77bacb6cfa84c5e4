from typing import Dict, Optional, TypedDict


class FlightInfo(TypedDict):
    """A scheduled flight and its seat map."""

    flight_id: str
    origin: str
    destination: str
    departure: str  # ISO 8601 date-time
    fare: float
    seats: Dict[str, Optional[str]]  # seat -> booking_id or None when free


class PassengerInfo(TypedDict):
    """A traveller profile."""

    passenger_id: str
    name: str
    frequent_flyer_tier: str  # "none", "silver" or "gold"


class BookingInfo(TypedDict):
    """A passenger's seat on a flight."""

    booking_id: str
    passenger_id: str
    flight_id: str
    seat: str
    bags: int
    status: str  # "confirmed" or "cancelled"
    paid: float


class AirlineReservations:
    BAG_FEE = 35.0

    def __init__(self, init_config: Optional[dict] = None):
        self.flights: Dict[str, FlightInfo] = {}
        self.passengers: Dict[str, PassengerInfo] = {}
        self.bookings: Dict[str, BookingInfo] = {}

    def _free_bags(self, passenger_id: str) -> int:
        return {"gold": 2, "silver": 1}.get(self.passengers[passenger_id]["frequent_flyer_tier"], 0)

    def search_flights(self, origin: str, destination: str, date: Optional[str] = None) -> dict:
        """Find flights between two airports, optionally on one day, with their free seat count.

        Args:
            origin: IATA code of the departure airport, e.g. "LIS".
            destination: IATA code of the arrival airport.
            date: Departure day as YYYY-MM-DD.

        Returns:
            dict: {"success": True, "data": List[dict]}
        """
        found = []
        for flight in self.flights.values():
            if flight["origin"] == origin.upper() and flight["destination"] == destination.upper() \
                    and (date is None or flight["departure"].startswith(date)):
                free = sum(1 for booking in flight["seats"].values() if booking is None)
                found.append({k: v for k, v in flight.items() if k != "seats"} | {"free_seats": free})
        return {"success": True, "data": sorted(found, key=lambda f: f["departure"])}

    def get_seat_map(self, flight_id: str) -> dict:
        """List a flight's seats and whether each is free.

        Args:
            flight_id: The flight.

        Returns:
            dict: {"success": True, "data": Dict[str, bool]} (seat -> free) or {"success": False, "error": str}
        """
        flight = self.flights.get(flight_id)
        if flight is None:
            return {"success": False, "error": f"Flight {flight_id} not found"}
        return {"success": True, "data": {seat: booking is None for seat, booking in flight["seats"].items()}}

    def find_passenger(self, name: str) -> dict:
        """Find traveller profiles by name.

        Args:
            name: Case-insensitive part of the name.

        Returns:
            dict: {"success": True, "data": List[PassengerInfo]}
        """
        return {"success": True, "data": [p for p in self.passengers.values() if name.lower() in p["name"].lower()]}

    def list_passenger_bookings(self, passenger_id: str) -> dict:
        """List a passenger's bookings.

        Args:
            passenger_id: The passenger.

        Returns:
            dict: {"success": True, "data": List[BookingInfo]} or {"success": False, "error": str}
        """
        if passenger_id not in self.passengers:
            return {"success": False, "error": f"Passenger {passenger_id} not found"}
        return {"success": True, "data": [b for b in self.bookings.values() if b["passenger_id"] == passenger_id]}

    def book_flight(self, passenger_id: str, flight_id: str, seat: str) -> dict:
        """Book a passenger onto a flight in a free seat, paying the fare.

        Args:
            passenger_id: The traveller.
            flight_id: The flight.
            seat: A free seat such as "12A".

        Returns:
            dict: {"success": True, "message": str, "data": {"booking_id": str}} or {"success": False, "error": str}
        """
        if passenger_id not in self.passengers:
            return {"success": False, "error": f"Passenger {passenger_id} not found"}
        flight = self.flights.get(flight_id)
        if flight is None:
            return {"success": False, "error": f"Flight {flight_id} not found"}
        if seat not in flight["seats"]:
            return {"success": False, "error": f"Seat {seat} does not exist on {flight_id}"}
        if flight["seats"][seat] is not None:
            return {"success": False, "error": f"Seat {seat} is taken"}
        if any(b["passenger_id"] == passenger_id and b["flight_id"] == flight_id and b["status"] == "confirmed"
               for b in self.bookings.values()):
            return {"success": False, "error": "The passenger is already booked on this flight"}
        booking_id = f"BK{len(self.bookings) + 1:04d}"
        self.bookings[booking_id] = {"booking_id": booking_id, "passenger_id": passenger_id, "flight_id": flight_id,
                                     "seat": seat, "bags": 0, "status": "confirmed", "paid": flight["fare"]}
        flight["seats"][seat] = booking_id
        return {"success": True, "message": f"Booked {booking_id}", "data": {"booking_id": booking_id}}

    def cancel_booking(self, booking_id: str) -> dict:
        """Cancel a confirmed booking and free its seat.

        Args:
            booking_id: The booking.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        booking = self.bookings.get(booking_id)
        if booking is None or booking["status"] != "confirmed":
            return {"success": False, "error": f"No confirmed booking {booking_id}"}
        booking["status"] = "cancelled"
        self.flights[booking["flight_id"]]["seats"][booking["seat"]] = None
        return {"success": True, "message": f"Booking {booking_id} cancelled"}

    def change_seat(self, booking_id: str, new_seat: str) -> dict:
        """Move a booking to another free seat on the same flight.

        Args:
            booking_id: The booking.
            new_seat: A free seat.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        booking = self.bookings.get(booking_id)
        if booking is None or booking["status"] != "confirmed":
            return {"success": False, "error": f"No confirmed booking {booking_id}"}
        seats = self.flights[booking["flight_id"]]["seats"]
        if new_seat not in seats or seats[new_seat] is not None:
            return {"success": False, "error": f"Seat {new_seat} is not free"}
        seats[booking["seat"]] = None
        seats[new_seat] = booking_id
        booking["seat"] = new_seat
        return {"success": True, "message": f"Booking {booking_id} now in {new_seat}"}

    def add_baggage(self, booking_id: str, bags: int) -> dict:
        """Add checked bags; each bag beyond the tier's free allowance costs 35.

        Args:
            booking_id: The booking.
            bags: How many bags to add (1 to 3).

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        booking = self.bookings.get(booking_id)
        if booking is None or booking["status"] != "confirmed":
            return {"success": False, "error": f"No confirmed booking {booking_id}"}
        if not 1 <= bags <= 3 or booking["bags"] + bags > 3:
            return {"success": False, "error": "At most 3 checked bags per booking"}
        free = max(self._free_bags(booking["passenger_id"]) - booking["bags"], 0)
        fee = max(bags - free, 0) * self.BAG_FEE
        booking["bags"] += bags
        booking["paid"] = round(booking["paid"] + fee, 2)
        return {"success": True, "message": f"Added {bags} bag(s) for {fee:.2f}"}
