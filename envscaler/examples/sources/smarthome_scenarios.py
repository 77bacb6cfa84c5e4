META = {
    "env_id": "env_7",
    "env_class_name": "SmartHome",
    "environment_summary": "Smart home device control",
    "environment_introduction": (
        "This environment is the hub of a connected home. It knows the rooms, the lights, plugs, thermostats "
        "and door locks in them, and daily schedules that switch devices on and off. Residents use it to "
        "control devices, set temperatures and brightness, manage schedules and switch on away mode."
    ),
    "constraints_rules": [
        "Brightness is 0 to 100; a brightness above 0 turns the light on.",
        "Thermostat targets are 10 to 30 degrees Celsius.",
        "Locks are operated only with set_lock and cannot be scheduled.",
        "Away mode turns every light and plug off and locks every lock.",
    ],
}


def _device(device_id, room_id, kind, name, on=False, brightness=None, target=None, locked=None):
    return {"device_id": device_id, "room_id": room_id, "kind": kind, "name": name, "on": on,
            "brightness": brightness, "target_temperature": target, "locked": locked}


BASE = {
    "away_mode": False,
    "rooms": {
        "R1": {"room_id": "R1", "name": "Living room", "floor": 0},
        "R2": {"room_id": "R2", "name": "Bedroom", "floor": 1},
        "R3": {"room_id": "R3", "name": "Hallway", "floor": 0},
    },
    "devices": {
        "DV1": _device("DV1", "R1", "light", "Living room ceiling light", on=True, brightness=80),
        "DV2": _device("DV2", "R1", "plug", "TV plug", on=True),
        "DV3": _device("DV3", "R1", "thermostat", "Living room thermostat", on=True, target=21.0),
        "DV4": _device("DV4", "R2", "light", "Bedside lamp", brightness=0),
        "DV5": _device("DV5", "R2", "thermostat", "Bedroom thermostat", on=True, target=19.5),
        "DV6": _device("DV6", "R3", "lock", "Front door lock", locked=False),
    },
    "schedules": {
        "SCH1": {"schedule_id": "SCH1", "device_id": "DV2", "time": "23:30", "action": "off"},
    },
}

SCENARIOS = [
    {
        "task_id": "1102-213005",
        "task": (
            "Getting ready for bed: please set the bedroom thermostat to 18 degrees, put the bedside lamp on at "
            "30 percent brightness, and turn off the living room ceiling light. Also make sure the bedside "
            "lamp switches itself off at 23:00 every night."
        ),
        "checks": [
            ("Is the bedroom thermostat (DV5) set to 18?", '''
def check_func(final_state):
    return final_state["devices"]["DV5"]["target_temperature"] == 18.0
'''),
            ("Is the bedside lamp (DV4) on at 30% and the ceiling light (DV1) off?", '''
def check_func(final_state):
    d = final_state["devices"]
    return d["DV4"]["on"] is True and d["DV4"]["brightness"] == 30 and d["DV1"]["on"] is False
'''),
            ("Is there a daily 23:00 'off' schedule for DV4?", '''
def check_func(final_state):
    return any(s["device_id"] == "DV4" and s["time"] == "23:00" and s["action"] == "off"
               for s in final_state["schedules"].values())
'''),
        ],
        "solution": [
            ("list_rooms", {}),
            ("list_devices", {"room_id": "R2"}),
            ("set_thermostat", {"device_id": "DV5", "target_temperature": 18}),
            ("set_brightness", {"device_id": "DV4", "brightness": 30}),
            ("list_devices", {"room_id": "R1", "kind": "light"}),
            ("switch_device", {"device_id": "DV1", "on": False}),
            ("create_schedule", {"device_id": "DV4", "time": "23:00", "action": "off"}),
        ],
    },
    {
        "task_id": "1102-074512",
        "task": (
            "We're leaving for a week. Switch the house to away mode so everything is off and the front door "
            "is locked, lower the living room thermostat to the minimum of 10 degrees to save energy, and "
            "remove the TV plug's nightly schedule since the plug will be off anyway."
        ),
        "checks": [
            ("Is away mode on, the front door locked and every light and plug off?", '''
def check_func(final_state):
    d = final_state["devices"]
    return final_state["away_mode"] is True and d["DV6"]["locked"] is True and all(
        not x["on"] for x in d.values() if x["kind"] in ("light", "plug"))
'''),
            ("Is the living room thermostat (DV3) at 10?", '''
def check_func(final_state):
    return final_state["devices"]["DV3"]["target_temperature"] == 10.0
'''),
            ("Has the TV plug's schedule been removed?", '''
def check_func(final_state):
    return not any(s["device_id"] == "DV2" for s in final_state["schedules"].values())
'''),
        ],
        "solution": [
            ("set_away_mode", {"enabled": True}),
            ("list_devices", {"kind": "thermostat"}),
            ("set_thermostat", {"device_id": "DV3", "target_temperature": 10}),
            ("list_schedules", {"device_id": "DV2"}),
            ("delete_schedule", {"schedule_id": "SCH1"}),
        ],
    },
    {
        "task_id": "1102-180244",
        "task": (
            "I'm having guests over tonight. Unlock the front door, dim the living room ceiling light to 45 "
            "percent, and warm the living room up to 22.5 degrees. Set the ceiling light to switch off on its "
            "own at 01:30."
        ),
        "checks": [
            ("Is the front door (DV6) unlocked?", '''
def check_func(final_state):
    return final_state["devices"]["DV6"]["locked"] is False
'''),
            ("Is DV1 on at 45% and DV3 at 22.5?", '''
def check_func(final_state):
    d = final_state["devices"]
    return d["DV1"]["brightness"] == 45 and d["DV1"]["on"] is True and d["DV3"]["target_temperature"] == 22.5
'''),
            ("Is there a 01:30 'off' schedule for DV1?", '''
def check_func(final_state):
    return any(s["device_id"] == "DV1" and s["time"] == "01:30" and s["action"] == "off"
               for s in final_state["schedules"].values())
'''),
        ],
        "solution": [
            ("list_devices", {"kind": "lock"}),
            ("set_lock", {"device_id": "DV6", "locked": False}),
            ("list_devices", {"room_id": "R1"}),
            ("set_brightness", {"device_id": "DV1", "brightness": 45}),
            ("set_thermostat", {"device_id": "DV3", "target_temperature": 22.5}),
            ("create_schedule", {"device_id": "DV1", "time": "1:30", "action": "off"}),
        ],
    },
]

# The guests scenario starts with the front door locked.
_locked = {**BASE, "devices": {**BASE["devices"], "DV6": {**BASE["devices"]["DV6"], "locked": True}}}
SCENARIOS[2]["init_config"] = _locked
