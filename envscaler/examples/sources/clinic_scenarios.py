META = {
    "env_id": "env_2",
    "env_class_name": "ClinicScheduler",
    "environment_summary": "Outpatient clinic appointment scheduling",
    "environment_introduction": (
        "This environment is the scheduling system of an outpatient clinic. It holds the doctors and their "
        "specialties, registered patients, bookable half-hour slots and appointments. Front-desk staff use it "
        "to find free slots, book, move and cancel appointments, and record visit notes."
    ),
    "constraints_rules": [
        "A slot holds at most one appointment.",
        "A patient may not hold two scheduled appointments with the same doctor.",
        "An appointment can only be moved to a free slot of the same doctor.",
        "Cancelling an appointment frees its slot.",
    ],
}

BASE = {
    "doctors": {
        "D01": {"doctor_id": "D01", "name": "Dr. Priya Nair", "specialty": "dermatology"},
        "D02": {"doctor_id": "D02", "name": "Dr. Tomás Silva", "specialty": "cardiology"},
        "D03": {"doctor_id": "D03", "name": "Dr. Hana Kim", "specialty": "general practice"},
    },
    "patients": {
        "P100": {"patient_id": "P100", "name": "Grace Liu", "date_of_birth": "1988-03-14", "phone": "555-0141"},
        "P101": {"patient_id": "P101", "name": "Omar Haddad", "date_of_birth": "1975-11-02", "phone": "555-0199"},
        "P102": {"patient_id": "P102", "name": "Lena Fischer", "date_of_birth": "2001-07-21", "phone": "555-0123"},
    },
    "slots": {
        "S1": {"slot_id": "S1", "doctor_id": "D01", "start": "2025-03-10T09:00:00", "booked": True},
        "S2": {"slot_id": "S2", "doctor_id": "D01", "start": "2025-03-10T09:30:00", "booked": False},
        "S3": {"slot_id": "S3", "doctor_id": "D01", "start": "2025-03-12T14:00:00", "booked": False},
        "S4": {"slot_id": "S4", "doctor_id": "D02", "start": "2025-03-11T10:00:00", "booked": True},
        "S5": {"slot_id": "S5", "doctor_id": "D02", "start": "2025-03-13T11:30:00", "booked": False},
        "S6": {"slot_id": "S6", "doctor_id": "D03", "start": "2025-03-10T08:00:00", "booked": False},
    },
    "appointments": {
        "A001": {"appointment_id": "A001", "patient_id": "P101", "slot_id": "S1", "reason": "rash on forearm",
                 "status": "scheduled", "notes": []},
        "A002": {"appointment_id": "A002", "patient_id": "P100", "slot_id": "S4", "reason": "palpitations",
                 "status": "scheduled", "notes": []},
    },
}

SCENARIOS = [
    {
        "task_id": "0310-081522",
        "task": (
            "Hello, I'm Lena Fischer. I have a mole I'd like a dermatologist to look at. Please book me the "
            "earliest free dermatology appointment you have, with the reason 'mole check', and add a note "
            "that I'm allergic to latex so the doctor knows before the visit."
        ),
        "checks": [
            ("Has Lena Fischer (P102) a scheduled appointment in slot S2 for 'mole check'?", '''
def check_func(final_state):
    return any(a["patient_id"] == "P102" and a["slot_id"] == "S2" and a["status"] == "scheduled"
               and a["reason"] == "mole check" for a in final_state["appointments"].values())
'''),
            ("Is slot S2 marked booked?", '''
def check_func(final_state):
    return final_state["slots"]["S2"]["booked"] is True
'''),
            ("Does Lena's appointment carry a note mentioning a latex allergy?", '''
def check_func(final_state):
    return any(a["patient_id"] == "P102" and any("latex" in n.lower() for n in a["notes"])
               for a in final_state["appointments"].values())
'''),
        ],
        "solution": [
            ("find_patient", {"name": "Lena"}),
            ("list_doctors", {"specialty": "dermatology"}),
            ("find_available_slots", {"doctor_id": "D01"}),
            ("book_appointment", {"patient_id": "P102", "slot_id": "S2", "reason": "mole check"}),
            ("add_visit_note", {"appointment_id": "A003", "note": "Patient is allergic to latex."}),
        ],
    },
    {
        "task_id": "0310-093047",
        "task": (
            "This is Grace Liu. My cardiology appointment on the 11th of March clashes with work. Could you move "
            "it to the next free slot with the same cardiologist instead? Please keep the same reason for the "
            "visit; I don't want to lose my place with that doctor."
        ),
        "checks": [
            ("Is appointment A002 now in slot S5, still scheduled, with its reason unchanged?", '''
def check_func(final_state):
    a = final_state["appointments"]["A002"]
    reason = initial_state["appointments"]["A002"]["reason"]
    return a["slot_id"] == "S5" and a["status"] == "scheduled" and a["reason"] == reason
'''),
            ("Has slot S4 been freed and S5 booked?", '''
def check_func(final_state):
    return final_state["slots"]["S4"]["booked"] is False and final_state["slots"]["S5"]["booked"] is True
'''),
        ],
        "solution": [
            ("find_patient", {"name": "Grace Liu"}),
            ("list_patient_appointments", {"patient_id": "P100", "status": "scheduled"}),
            ("find_available_slots", {"doctor_id": "D02"}),
            ("reschedule_appointment", {"appointment_id": "A002", "new_slot_id": "S5"}),
        ],
    },
    {
        "task_id": "0310-110904",
        "task": (
            "Omar Haddad called: his skin rash has cleared up, so he no longer needs the dermatology visit and "
            "asks us to cancel it. He does want a general check-up instead; book him the general practice slot "
            "on March 10 with the reason 'annual check-up'."
        ),
        "checks": [
            ("Has appointment A001 been cancelled?", '''
def check_func(final_state):
    return final_state["appointments"]["A001"]["status"] == "cancelled"
'''),
            ("Is slot S1 free again?", '''
def check_func(final_state):
    return final_state["slots"]["S1"]["booked"] is False
'''),
            ("Has Omar (P101) a scheduled appointment in S6 for 'annual check-up'?", '''
def check_func(final_state):
    return any(a["patient_id"] == "P101" and a["slot_id"] == "S6" and a["status"] == "scheduled"
               and a["reason"] == "annual check-up" for a in final_state["appointments"].values())
'''),
        ],
        "solution": [
            ("find_patient", {"name": "Omar"}),
            ("list_patient_appointments", {"patient_id": "P101"}),
            ("cancel_appointment", {"appointment_id": "A001"}),
            ("list_doctors", {"specialty": "general practice"}),
            ("find_available_slots", {"doctor_id": "D03", "date": "2025-03-10"}),
            ("book_appointment", {"patient_id": "P101", "slot_id": "S6", "reason": "annual check-up"}),
        ],
    },
]
