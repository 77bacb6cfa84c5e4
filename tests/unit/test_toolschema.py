"""Tool schemas derived from the class by AST, fixing EnvScaler's derivation bugs."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from envscaler.spec.toolschema import SchemaError, derive_tools, served_tools, strip_param_section

CODE = '''
from typing import Any, Dict, List, Literal, Optional, TypedDict, Union

Status = Literal["open", "closed"]


class Address(TypedDict):
    street: str
    zip: Optional[str]


class Partial(TypedDict, total=False):
    note: str


class Base:
    def inherited(self, flag: bool) -> dict:
        """From the base class."""
        return {}


class Env(Base):
    def __init__(self, config: dict):
        self.items = {}

    def _helper(self, x: int) -> int:
        return x

    @property
    def size(self) -> int:
        return 0

    def google(self, item_id: str, limit: int = 10, tags: List[str] = [], mode: Optional[str] = None) -> dict:
        """Look items up.

        Args:
            item_id (str): The item's ID.
            limit: How many,
                at most.
            tags: Tags to match.
            mode: Search mode.

        Returns:
            dict: {"success": True, "data": ...}

        Constraints:
            - item_id must exist.
        """
        return {}

    def numpy_style(self, x: float, y: "int | None" = None) -> dict:
        """Add numbers.

        Parameters
        ----------
        x : float
            The first number.
        y : int, optional
            The second number.

        Returns
        -------
        dict
        """
        return {}

    def rest_style(self, name: str) -> dict:
        """Greet someone.

        :param name: Who to greet.
        :returns: a greeting
        """
        return {}

    def types(self, status: Status, kind: Literal["a", "b"], choice: Union[int, str], pair: tuple[int, ...],
              mapping: Dict[str, int], address: Address, partial: Partial, anything: Any, plain: dict,
              nested: list[list[str]], new_union: int | None) -> dict:
        return {}

    def unannotated(self, a, b=3, *args, c, **kwargs):
        return {}

    @staticmethod
    def static(value: int) -> dict:
        return {}
'''


@pytest.fixture(scope="module")
def tools() -> dict[str, dict]:
    return {t["function"]["name"]: t["function"] for t in derive_tools(CODE, "Env")}


def test_init_private_and_properties_are_not_tools(tools: dict[str, dict]) -> None:
    assert set(tools) == {"inherited", "google", "numpy_style", "rest_style", "types", "unannotated", "static"}


def test_parameters_with_defaults_are_optional(tools: dict[str, dict]) -> None:
    params = tools["google"]["parameters"]
    assert params["required"] == ["item_id"]
    assert params["properties"]["limit"]["default"] == 10
    assert params["properties"]["tags"] == {"type": "array", "items": {"type": "string"}, "default": [],
                                            "description": "Tags to match."}
    assert params["properties"]["mode"]["type"] == ["string", "null"]


def test_google_docstring(tools: dict[str, dict]) -> None:
    google = tools["google"]
    assert google["parameters"]["properties"]["item_id"]["description"] == "The item's ID."
    assert google["parameters"]["properties"]["limit"]["description"] == "How many,\nat most."
    assert "Args:" not in google["description"] and "item_id (str)" not in google["description"]
    assert google["description"].startswith("Look items up.")
    assert "Constraints:" in google["description"] and "Returns:" in google["description"]


def test_numpy_and_rest_docstrings(tools: dict[str, dict]) -> None:
    numpy_props = tools["numpy_style"]["parameters"]["properties"]
    assert numpy_props["x"]["description"] == "The first number."
    assert numpy_props["y"]["type"] == ["integer", "null"]
    assert "Parameters" not in tools["numpy_style"]["description"]
    assert "Returns" in tools["numpy_style"]["description"]
    assert tools["rest_style"]["parameters"]["properties"]["name"]["description"] == "Who to greet."
    assert ":param" not in tools["rest_style"]["description"]


def test_typing_constructs(tools: dict[str, dict]) -> None:
    p = tools["types"]["parameters"]["properties"]
    assert p["status"] == {"enum": ["open", "closed"], "type": "string"}
    assert p["kind"] == {"enum": ["a", "b"], "type": "string"}
    assert p["choice"] == {"type": ["integer", "string"]}
    assert p["pair"] == {"type": "array", "items": {"type": "integer"}}
    assert p["mapping"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert p["address"] == {"type": "object", "properties": {"street": {"type": "string"},
                                                             "zip": {"type": ["string", "null"]}},
                            "required": ["street", "zip"]}
    assert p["partial"] == {"type": "object", "properties": {"note": {"type": "string"}}}
    assert p["anything"] == {}
    assert p["plain"] == {"type": "object"}
    assert p["nested"] == {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}
    assert p["new_union"] == {"type": ["integer", "null"]}


def test_unannotated_parameters_do_not_crash(tools: dict[str, dict]) -> None:
    params = tools["unannotated"]["parameters"]
    assert params["properties"] == {"a": {}, "b": {"default": 3}, "c": {}}
    assert params["required"] == ["a", "c"]
    assert tools["unannotated"]["description"] == "unannotated"


def test_static_and_inherited(tools: dict[str, dict]) -> None:
    assert list(tools["static"]["parameters"]["properties"]) == ["value"]
    assert tools["inherited"]["parameters"]["required"] == ["flag"]


def test_every_schema_is_valid_json_schema(tools: dict[str, dict]) -> None:
    for tool in tools.values():
        Draft202012Validator.check_schema(tool["parameters"])


def test_missing_class_and_bad_code() -> None:
    with pytest.raises(SchemaError, match="class 'Nope' is not defined"):
        derive_tools(CODE, "Nope")
    with pytest.raises(SchemaError, match="does not parse"):
        derive_tools("def broken(:\n", "Env")


def test_record_tools_are_served_without_private_helpers() -> None:
    published = [{"type": "function", "function": {"name": "_helper", "parameters": {}}},
                 {"type": "function", "function": {"name": "google", "parameters": {}}}]
    assert [t["function"]["name"] for t in served_tools(published, CODE, "Env", "record")] == ["google"]
    assert len(served_tools(None, CODE, "Env", "record")) == 7


ENVSCALER_RECORD_CODE = """
class Clinic:
    def cancel_appointment(self, appointment_id: str, reason: str = "patient request") -> dict:
        \"\"\"Cancel an appointment.

        Args:
            appointment_id: which one
            reason: why
        \"\"\"
        return {"success": True}

    def _audit(self) -> None:
        pass

    @property
    def busy(self) -> bool:
        return False

    drop = cancel_appointment
"""

# As EnvScaler publishes it: the whole docstring, a private helper, and `reason` required despite its default.
ENVSCALER_RECORD_TOOLS = [
    {"type": "function", "function": {
        "name": "cancel_appointment", "description": "Cancel an appointment.\n\nArgs:\n    appointment_id: ...",
        "parameters": {"type": "object", "properties": {
            "appointment_id": {"type": "string", "description": "the appointment's id"},
            "reason": {"type": "string"}}, "required": ["appointment_id", "reason"]}}},
    {"type": "function", "function": {"name": "_audit", "description": "",
                                      "parameters": {"type": "object", "properties": {}, "required": []}}},
    {"type": "function", "function": {"name": "busy", "description": "",
                                      "parameters": {"type": "object", "properties": {}, "required": []}}},
    {"type": "function", "function": {"name": "drop", "description": "Cancel an appointment.",
                                      "parameters": {"type": "object", "properties": {}, "required": []}}},
]


def test_derived_schemas_by_default_with_the_record_descriptions() -> None:
    tool, alias = served_tools(ENVSCALER_RECORD_TOOLS, ENVSCALER_RECORD_CODE, "Clinic")
    assert alias == ENVSCALER_RECORD_TOOLS[3]  # not a method the AST sees: kept as the record has it
    function = tool["function"]
    assert function["parameters"]["required"] == ["appointment_id"]  # the default makes `reason` optional
    assert function["parameters"]["properties"]["reason"] == {"type": "string", "default": "patient request",
                                                              "description": "why"}
    assert function["parameters"]["properties"]["appointment_id"]["description"] == "the appointment's id"
    assert function["description"] == ENVSCALER_RECORD_TOOLS[0]["function"]["description"]
    recorded = served_tools(ENVSCALER_RECORD_TOOLS, ENVSCALER_RECORD_CODE, "Clinic", "record")
    assert recorded == [ENVSCALER_RECORD_TOOLS[0], *ENVSCALER_RECORD_TOOLS[2:]]  # bit for bit, known bug included
    with pytest.raises(SchemaError, match="tool schemas 'mixed': expected one of derived, record"):
        served_tools(None, ENVSCALER_RECORD_CODE, "Clinic", "mixed")


def test_strip_param_section_keeps_other_sections() -> None:
    doc = "Do it.\n\nArgs:\n    a: first\n    b: second\n\nReturns:\n    dict: result\n"
    assert strip_param_section(doc) == "Do it.\n\nReturns:\n    dict: result"


def test_spurious_ast_system_error_falls_back_to_a_fresh_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    import ast as ast_module

    def broken(*args: object, **kwargs: object) -> None:
        raise SystemError("AST constructor recursion depth mismatch (before=30, after=28)")

    monkeypatch.setattr(ast_module, "parse", broken)
    assert derive_tools(CODE, "Env")[0]["function"]["name"] == "inherited"
    with pytest.raises(SchemaError, match="does not parse"):
        derive_tools("def broken(:\n", "Env")
