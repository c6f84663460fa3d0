"""{{name}}: a tools plugin. Claude may call its tools for the plugins
whose Claude grant names it in `tools_from`. `count_words` counts the words
of a text and keeps a running total in its private state.

Build: `mission build {{name}}` (componentize-py)."""

import json
from typing import List

from componentize_py_types import Err
from wit_world import WitWorld as World
from wit_world.imports import state
from wit_world.imports.tool_types import Tool, ToolCall, ToolOutput, ToolOutput_Text

SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


class WitWorld(World):
    def tools(self) -> List[Tool]:
        return [Tool(name="count_words", description="Counts the words of a text.", input_schema=json.dumps(SCHEMA))]

    def call(self, call: ToolCall) -> ToolOutput:
        if call.name != "count_words":
            raise Err(f"no tool `{call.name}`")
        words = len(str(json.loads(call.input).get("text", "")).split())
        try:
            total = int(state.get("total") or "0") + words
            state.set("total", str(total))
        except Err as e:
            raise Err(f"state: {e.value}")
        return ToolOutput_Text(f"{words} words ({total} counted in all)")
