from typing import Dict, List, Optional, TypedDict


class RoomInfo(TypedDict):
    """A room of the house."""

    room_id: str
    name: str
    floor: int


class DeviceInfo(TypedDict):
    """A connected device and its current settings."""

    device_id: str
    room_id: str
    kind: str  # "light", "thermostat", "plug" or "lock"
    name: str
    on: bool
    brightness: Optional[int]  # lights: 0-100
    target_temperature: Optional[float]  # thermostats: 10-30 C
    locked: Optional[bool]  # locks


class ScheduleInfo(TypedDict):
    """A timed action run every day."""

    schedule_id: str
    device_id: str
    time: str  # HH:MM
    action: str  # "on" or "off"


class SmartHome:
    def __init__(self, init_config: Optional[dict] = None):
        self.rooms: Dict[str, RoomInfo] = {}
        self.devices: Dict[str, DeviceInfo] = {}
        self.schedules: Dict[str, ScheduleInfo] = {}
        self.away_mode: bool = False

    def _device(self, device_id: str, kind: Optional[str] = None) -> Optional[DeviceInfo]:
        device = self.devices.get(device_id)
        if device is None or (kind is not None and device["kind"] != kind):
            return None
        return device

    def list_rooms(self) -> dict:
        """List the rooms of the house.

        Returns:
            dict: {"success": True, "data": List[RoomInfo]}
        """
        return {"success": True, "data": list(self.rooms.values())}

    def list_devices(self, room_id: Optional[str] = None, kind: Optional[str] = None) -> dict:
        """List devices, optionally in one room or of one kind.

        Args:
            room_id: Only devices in this room.
            kind: light, thermostat, plug or lock.

        Returns:
            dict: {"success": True, "data": List[DeviceInfo]}
        """
        found = [d for d in self.devices.values()
                 if (room_id is None or d["room_id"] == room_id) and (kind is None or d["kind"] == kind)]
        return {"success": True, "data": found}

    def switch_device(self, device_id: str, on: bool) -> dict:
        """Turn a light, plug or thermostat on or off.

        Args:
            device_id: The device.
            on: True to turn it on, False to turn it off.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        device = self._device(device_id)
        if device is None:
            return {"success": False, "error": f"Device {device_id} not found"}
        if device["kind"] == "lock":
            return {"success": False, "error": "Locks are operated with set_lock"}
        device["on"] = bool(on)
        return {"success": True, "message": f"{device['name']} is {'on' if on else 'off'}"}

    def set_brightness(self, device_id: str, brightness: int) -> dict:
        """Set a light's brightness; a brightness above 0 also turns it on.

        Args:
            device_id: A light.
            brightness: 0 to 100.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        device = self._device(device_id, "light")
        if device is None:
            return {"success": False, "error": f"No light {device_id}"}
        if not 0 <= brightness <= 100:
            return {"success": False, "error": "Brightness must be between 0 and 100"}
        device["brightness"] = brightness
        device["on"] = brightness > 0
        return {"success": True, "message": f"{device['name']} at {brightness}%"}

    def set_thermostat(self, device_id: str, target_temperature: float) -> dict:
        """Set a thermostat's target temperature in Celsius.

        Args:
            device_id: A thermostat.
            target_temperature: 10 to 30.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        device = self._device(device_id, "thermostat")
        if device is None:
            return {"success": False, "error": f"No thermostat {device_id}"}
        if not 10 <= target_temperature <= 30:
            return {"success": False, "error": "Target temperature must be between 10 and 30"}
        device["target_temperature"] = float(target_temperature)
        return {"success": True, "message": f"{device['name']} set to {target_temperature} C"}

    def set_lock(self, device_id: str, locked: bool) -> dict:
        """Lock or unlock a door lock.

        Args:
            device_id: A lock.
            locked: True to lock.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        device = self._device(device_id, "lock")
        if device is None:
            return {"success": False, "error": f"No lock {device_id}"}
        device["locked"] = bool(locked)
        return {"success": True, "message": f"{device['name']} {'locked' if locked else 'unlocked'}"}

    def create_schedule(self, device_id: str, time: str, action: str) -> dict:
        """Run an action on a device every day at a time.

        Args:
            device_id: A light, plug or thermostat.
            time: HH:MM, 24-hour clock.
            action: "on" or "off".

        Returns:
            dict: {"success": True, "message": str, "data": {"schedule_id": str}} or {"success": False, "error": str}
        """
        device = self._device(device_id)
        if device is None or device["kind"] == "lock":
            return {"success": False, "error": f"Device {device_id} cannot be scheduled"}
        parts = time.split(":")
        if len(parts) != 2 or not all(p.isdigit() for p in parts) or not (0 <= int(parts[0]) < 24
                                                                            and 0 <= int(parts[1]) < 60):
            return {"success": False, "error": f"Invalid time {time!r}; use HH:MM"}
        if action not in ("on", "off"):
            return {"success": False, "error": "Action must be 'on' or 'off'"}
        schedule_id = f"SCH{len(self.schedules) + 1}"
        self.schedules[schedule_id] = {"schedule_id": schedule_id, "device_id": device_id,
                                       "time": f"{int(parts[0]):02d}:{int(parts[1]):02d}", "action": action}
        return {"success": True, "message": f"Scheduled {action} at {time}", "data": {"schedule_id": schedule_id}}

    def delete_schedule(self, schedule_id: str) -> dict:
        """Delete a schedule.

        Args:
            schedule_id: The schedule.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        if self.schedules.pop(schedule_id, None) is None:
            return {"success": False, "error": f"Schedule {schedule_id} not found"}
        return {"success": True, "message": f"Schedule {schedule_id} deleted"}

    def list_schedules(self, device_id: Optional[str] = None) -> dict:
        """List schedules, optionally of one device.

        Args:
            device_id: Only this device's schedules.

        Returns:
            dict: {"success": True, "data": List[ScheduleInfo]}
        """
        found: List[ScheduleInfo] = [s for s in self.schedules.values()
                                     if device_id is None or s["device_id"] == device_id]
        return {"success": True, "data": found}

    def set_away_mode(self, enabled: bool) -> dict:
        """Away mode: when enabled, turns every light and plug off and locks every lock.

        Args:
            enabled: True when leaving the house.

        Returns:
            dict: {"success": True, "message": str}
        """
        self.away_mode = bool(enabled)
        if enabled:
            for device in self.devices.values():
                if device["kind"] in ("light", "plug"):
                    device["on"] = False
                elif device["kind"] == "lock":
                    device["locked"] = True
        return {"success": True, "message": f"Away mode {'on' if enabled else 'off'}"}
