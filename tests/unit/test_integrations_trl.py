"""The TRL adapter's tool methods: the schema transformers renders from them is the environment's own."""

from __future__ import annotations

import pytest
from transformers.utils import get_json_schema

from envscaler.integrations.common import IntegrationError
from envscaler.integrations.trl import tool_method

TOOL = {"type": "function", "function": {
    "name": "book_seat", "description": "Book a seat.\n\nArgs: below. Returns: a booking",
    "parameters": {"type": "object", "required": ["flight", "seats"], "properties": {
        "flight": {"type": "string", "description": "The flight's\n   number, e.g. TP101"},
        "seats": {"type": "array", "items": {"type": "integer"}, "description": "Seat rows. Returns: nothing"},
        "cabin": {"type": "string", "enum": ["economy", "business"], "description": "The cabin"},
        "bags": {"type": ["integer", "null"]},
        "extras": {"type": "object", "properties": {"meal": {"type": "string"}}, "description": "Options"},
        "price": {"anyOf": [{"type": "number"}, {"type": "string"}], "description": "A price"},
    }}}}


def test_the_rendered_schema_is_the_served_one() -> None:
    rendered = get_json_schema(tool_method("env_x", TOOL))["function"]
    assert rendered["name"] == "book_seat"
    assert rendered["description"] == "Book a seat. Args : below. Returns : a booking"
    properties = rendered["parameters"]["properties"]
    assert set(rendered["parameters"]["required"]) == {"flight", "seats"}
    assert properties["flight"] == {"type": "string", "description": "The flight's number, e.g. TP101"}
    assert properties["seats"] == {"type": "array", "items": {"type": "integer"},
                                  "description": "Seat rows. Returns : nothing"}
    assert properties["cabin"]["enum"] == ["economy", "business"]
    assert properties["bags"]["type"] == "integer" and properties["bags"]["nullable"] is True
    assert properties["extras"]["type"] == "object"  # nested properties are the sandbox's to check
    assert sorted(properties["price"]["type"]) == ["number", "string"]


@pytest.mark.parametrize(("tool", "message"), [
    ({"function": {"name": "reset", "parameters": {}}}, "env_x: tool 'reset': TRL cannot expose"),
    ({"function": {"name": "get_reward"}}, "env_x: tool 'get_reward': TRL cannot expose"),
    ({"function": {"name": "_hidden"}}, "env_x: tool '_hidden'"),
    ({"function": {"name": "move", "parameters": {"properties": {"from": {}}}}},
     "env_x: tool 'move': argument 'from' is not a Python identifier"),
    ({"function": {"name": "move", "parameters": {"properties": {"to-x": {}}}}}, "argument 'to-x'"),
])
def test_tools_trl_cannot_expose_are_refused_by_name(tool: dict, message: str) -> None:
    with pytest.raises(IntegrationError, match=message):
        tool_method("env_x", tool)
