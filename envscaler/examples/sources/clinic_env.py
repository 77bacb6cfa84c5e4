from typing import Dict, List, Literal, Optional, TypedDict


class DoctorInfo(TypedDict):
    """A physician and the specialty they practise."""

    doctor_id: str
    name: str
    specialty: str


class PatientInfo(TypedDict):
    """A registered patient."""

    patient_id: str
    name: str
    date_of_birth: str
    phone: str


class SlotInfo(TypedDict):
    """A bookable half-hour with one doctor."""

    slot_id: str
    doctor_id: str
    start: str  # ISO 8601 date-time
    booked: bool


class AppointmentInfo(TypedDict):
    """A patient booked into a slot."""

    appointment_id: str
    patient_id: str
    slot_id: str
    reason: str
    status: str  # "scheduled", "cancelled" or "completed"
    notes: List[str]


class ClinicScheduler:
    def __init__(self, init_config: Optional[dict] = None):
        self.doctors: Dict[str, DoctorInfo] = {}
        self.patients: Dict[str, PatientInfo] = {}
        self.slots: Dict[str, SlotInfo] = {}
        self.appointments: Dict[str, AppointmentInfo] = {}

    def list_doctors(self, specialty: Optional[str] = None) -> dict:
        """List the clinic's doctors, optionally of one specialty.

        Args:
            specialty: Case-insensitive specialty, for example "dermatology".

        Returns:
            dict: {"success": True, "data": List[DoctorInfo]}
        """
        doctors = [d for d in self.doctors.values()
                   if specialty is None or d["specialty"].lower() == specialty.lower()]
        return {"success": True, "data": doctors}

    def find_patient(self, name: str) -> dict:
        """Find patients whose name contains the given text.

        Args:
            name: Case-insensitive part of the patient's name.

        Returns:
            dict: {"success": True, "data": List[PatientInfo]}
        """
        text = name.lower()
        return {"success": True, "data": [p for p in self.patients.values() if text in p["name"].lower()]}

    def find_available_slots(self, doctor_id: str, date: Optional[str] = None) -> dict:
        """List a doctor's free slots, optionally on one day.

        Args:
            doctor_id: The doctor's ID.
            date: A day as YYYY-MM-DD.

        Returns:
            dict: {"success": True, "data": List[SlotInfo]} or {"success": False, "error": str}
        """
        if doctor_id not in self.doctors:
            return {"success": False, "error": f"Doctor {doctor_id} not found"}
        slots = [s for s in self.slots.values() if s["doctor_id"] == doctor_id and not s["booked"]
                 and (date is None or s["start"].startswith(date))]
        return {"success": True, "data": sorted(slots, key=lambda s: s["start"])}

    def book_appointment(self, patient_id: str, slot_id: str, reason: str) -> dict:
        """Book a patient into a free slot.

        Args:
            patient_id: The patient's ID.
            slot_id: A free slot.
            reason: Why the patient is coming.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}

        Constraints:
            - A patient may not hold two scheduled appointments with the same doctor.
        """
        if patient_id not in self.patients:
            return {"success": False, "error": f"Patient {patient_id} not found"}
        slot = self.slots.get(slot_id)
        if slot is None:
            return {"success": False, "error": f"Slot {slot_id} not found"}
        if slot["booked"]:
            return {"success": False, "error": f"Slot {slot_id} is already booked"}
        for appt in self.appointments.values():
            if appt["patient_id"] == patient_id and appt["status"] == "scheduled" \
                    and self.slots[appt["slot_id"]]["doctor_id"] == slot["doctor_id"]:
                return {"success": False, "error": "The patient already has a scheduled appointment with this doctor"}
        appointment_id = f"A{len(self.appointments) + 1:03d}"
        self.appointments[appointment_id] = {
            "appointment_id": appointment_id, "patient_id": patient_id, "slot_id": slot_id,
            "reason": reason, "status": "scheduled", "notes": [],
        }
        slot["booked"] = True
        return {"success": True, "message": f"Appointment {appointment_id} booked for {slot['start']}"}

    def cancel_appointment(self, appointment_id: str) -> dict:
        """Cancel a scheduled appointment and free its slot.

        Args:
            appointment_id: The appointment to cancel.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        appt = self.appointments.get(appointment_id)
        if appt is None:
            return {"success": False, "error": f"Appointment {appointment_id} not found"}
        if appt["status"] != "scheduled":
            return {"success": False, "error": f"Appointment {appointment_id} is {appt['status']}"}
        appt["status"] = "cancelled"
        self.slots[appt["slot_id"]]["booked"] = False
        return {"success": True, "message": f"Appointment {appointment_id} cancelled"}

    def reschedule_appointment(self, appointment_id: str, new_slot_id: str) -> dict:
        """Move a scheduled appointment to another free slot of the same doctor.

        Args:
            appointment_id: The appointment to move.
            new_slot_id: A free slot with the same doctor.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        appt = self.appointments.get(appointment_id)
        new_slot = self.slots.get(new_slot_id)
        if appt is None or appt["status"] != "scheduled":
            return {"success": False, "error": f"No scheduled appointment {appointment_id}"}
        if new_slot is None or new_slot["booked"]:
            return {"success": False, "error": f"Slot {new_slot_id} is not free"}
        old_slot = self.slots[appt["slot_id"]]
        if new_slot["doctor_id"] != old_slot["doctor_id"]:
            return {"success": False, "error": "The new slot belongs to another doctor; book a new appointment"}
        old_slot["booked"] = False
        new_slot["booked"] = True
        appt["slot_id"] = new_slot_id
        return {"success": True, "message": f"Appointment {appointment_id} moved to {new_slot['start']}"}

    def list_patient_appointments(self, patient_id: str,
                                  status: Optional[Literal["scheduled", "cancelled", "completed"]] = None) -> dict:
        """List a patient's appointments with their slot times.

        Args:
            patient_id: The patient's ID.
            status: Only appointments in this status.

        Returns:
            dict: {"success": True, "data": List[dict]} or {"success": False, "error": str}
        """
        if patient_id not in self.patients:
            return {"success": False, "error": f"Patient {patient_id} not found"}
        found = [{**a, "start": self.slots[a["slot_id"]]["start"], "doctor_id": self.slots[a["slot_id"]]["doctor_id"]}
                 for a in self.appointments.values()
                 if a["patient_id"] == patient_id and (status is None or a["status"] == status)]
        return {"success": True, "data": found}

    def add_visit_note(self, appointment_id: str, note: str) -> dict:
        """Attach a note to an appointment.

        Args:
            appointment_id: The appointment.
            note: Free text, at most 500 characters.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        appt = self.appointments.get(appointment_id)
        if appt is None:
            return {"success": False, "error": f"Appointment {appointment_id} not found"}
        if not note.strip() or len(note) > 500:
            return {"success": False, "error": "A note must have 1 to 500 characters"}
        appt["notes"].append(note)
        return {"success": True, "message": f"Note added to {appointment_id}"}

    def complete_appointment(self, appointment_id: str) -> dict:
        """Mark a scheduled appointment as completed.

        Args:
            appointment_id: The appointment.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        appt = self.appointments.get(appointment_id)
        if appt is None or appt["status"] != "scheduled":
            return {"success": False, "error": f"No scheduled appointment {appointment_id}"}
        appt["status"] = "completed"
        return {"success": True, "message": f"Appointment {appointment_id} completed"}
