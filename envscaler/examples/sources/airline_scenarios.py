def _seats(taken: dict) -> dict:
    return {f"{row}{col}": taken.get(f"{row}{col}") for row in (1, 2, 3) for col in "ABC"}


META = {
    "env_id": "env_5",
    "env_class_name": "AirlineReservations",
    "environment_summary": "Airline seat reservations",
    "environment_introduction": (
        "This environment is the reservation system of a regional airline. It holds scheduled flights with "
        "their seat maps, traveller profiles with frequent-flyer tiers, and bookings. Agents use it to find "
        "flights, book and cancel seats, move passengers to other seats and add checked baggage."
    ),
    "constraints_rules": [
        "A seat holds at most one confirmed booking; a passenger is booked at most once per flight.",
        "Cancelling a booking frees its seat.",
        "Gold members check 2 bags free, silver 1, others none; each further bag costs 35; at most 3 bags.",
    ],
}

BASE = {
    "flights": {
        "TP101": {"flight_id": "TP101", "origin": "LIS", "destination": "MAD", "departure": "2025-06-10T08:15:00",
                  "fare": 89.0, "seats": _seats({"1A": "BK0001", "1B": "BK0002"})},
        "TP103": {"flight_id": "TP103", "origin": "LIS", "destination": "MAD", "departure": "2025-06-10T18:40:00",
                  "fare": 119.0, "seats": _seats({})},
        "TP220": {"flight_id": "TP220", "origin": "MAD", "destination": "LIS", "departure": "2025-06-14T20:05:00",
                  "fare": 95.0, "seats": _seats({"3C": "BK0003"})},
    },
    "passengers": {
        "PX1": {"passenger_id": "PX1", "name": "Inês Costa", "frequent_flyer_tier": "gold"},
        "PX2": {"passenger_id": "PX2", "name": "Mark Dunne", "frequent_flyer_tier": "none"},
        "PX3": {"passenger_id": "PX3", "name": "Yuki Tanaka", "frequent_flyer_tier": "silver"},
    },
    "bookings": {
        "BK0001": {"booking_id": "BK0001", "passenger_id": "PX1", "flight_id": "TP101", "seat": "1A", "bags": 0,
                   "status": "confirmed", "paid": 89.0},
        "BK0002": {"booking_id": "BK0002", "passenger_id": "PX2", "flight_id": "TP101", "seat": "1B", "bags": 1,
                   "status": "confirmed", "paid": 124.0},
        "BK0003": {"booking_id": "BK0003", "passenger_id": "PX3", "flight_id": "TP220", "seat": "3C", "bags": 0,
                   "status": "confirmed", "paid": 95.0},
    },
}

SCENARIOS = [
    {
        "task_id": "0601-100212",
        "task": (
            "Hi, I'm Yuki Tanaka. I'm flying back from Madrid to Lisbon on June 14 and I'd like to sit at the "
            "front, in seat 1A if it's free on my flight. I'm also bringing two suitcases, please add them to "
            "my booking."
        ),
        "checks": [
            ("Is booking BK0003 now in seat 1A, with 3C freed?", '''
def check_func(final_state):
    seats = final_state["flights"]["TP220"]["seats"]
    return final_state["bookings"]["BK0003"]["seat"] == "1A" and seats["1A"] == "BK0003" and seats["3C"] is None
'''),
            ("Has BK0003 two bags, paid 95 + 35 (one free silver bag)?", '''
def check_func(final_state):
    b = final_state["bookings"]["BK0003"]
    return b["bags"] == 2 and abs(b["paid"] - 130.0) < 1e-6
'''),
        ],
        "solution": [
            ("find_passenger", {"name": "Yuki"}),
            ("list_passenger_bookings", {"passenger_id": "PX3"}),
            ("get_seat_map", {"flight_id": "TP220"}),
            ("change_seat", {"booking_id": "BK0003", "new_seat": "1A"}),
            ("add_baggage", {"booking_id": "BK0003", "bags": 2}),
        ],
    },
    {
        "task_id": "0601-113540",
        "task": (
            "Mark Dunne can't make his morning flight from Lisbon to Madrid on June 10. Cancel that booking and "
            "put him on the evening flight the same day instead, in a window seat in row 2 (seat 2A). He will "
            "not need checked bags this time."
        ),
        "checks": [
            ("Has BK0002 been cancelled and seat 1B on TP101 freed?", '''
def check_func(final_state):
    return final_state["bookings"]["BK0002"]["status"] == "cancelled" and final_state["flights"]["TP101"]["seats"]["1B"] is None
'''),
            ("Has Mark (PX2) a confirmed booking on TP103 in seat 2A with no bags?", '''
def check_func(final_state):
    return any(b["passenger_id"] == "PX2" and b["flight_id"] == "TP103" and b["seat"] == "2A"
               and b["status"] == "confirmed" and b["bags"] == 0 for b in final_state["bookings"].values())
'''),
        ],
        "solution": [
            ("find_passenger", {"name": "Mark Dunne"}),
            ("list_passenger_bookings", {"passenger_id": "PX2"}),
            ("cancel_booking", {"booking_id": "BK0002"}),
            ("search_flights", {"origin": "LIS", "destination": "MAD", "date": "2025-06-10"}),
            ("book_flight", {"passenger_id": "PX2", "flight_id": "TP103", "seat": "2A"}),
        ],
    },
    {
        "task_id": "0601-150908",
        "task": (
            "Inês Costa needs a return flight: book her on the June 14 evening flight from Madrid back to "
            "Lisbon in seat 2B, and add two checked bags to that new booking. As a gold member she should not "
            "pay for them; please confirm the total she paid."
        ),
        "checks": [
            ("Has Inês (PX1) a confirmed booking on TP220 in 2B?", '''
def check_func(final_state):
    return any(b["passenger_id"] == "PX1" and b["flight_id"] == "TP220" and b["seat"] == "2B"
               and b["status"] == "confirmed" for b in final_state["bookings"].values())
'''),
            ("Does that booking carry 2 bags at no extra cost (paid 95)?", '''
def check_func(final_state):
    return any(b["passenger_id"] == "PX1" and b["flight_id"] == "TP220" and b["bags"] == 2
               and abs(b["paid"] - 95.0) < 1e-6 for b in final_state["bookings"].values())
'''),
        ],
        "solution": [
            ("find_passenger", {"name": "Costa"}),
            ("search_flights", {"origin": "MAD", "destination": "LIS", "date": "2025-06-14"}),
            ("book_flight", {"passenger_id": "PX1", "flight_id": "TP220", "seat": "2B"}),
            ("add_baggage", {"booking_id": "BK0004", "bags": 2}),
            ("list_passenger_bookings", {"passenger_id": "PX1"}),
        ],
    },
]
