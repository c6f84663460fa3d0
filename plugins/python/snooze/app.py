"""Test fixture in Python: `later` and `event.wake` from the Python SDK. A
run not started by a wake-up asks to be woken in config `after_ms`
(default 1) with the payload `from python`, and reports the id; a woken
run reports the payload it was given back."""

from wit_world import WitWorld as World
from wit_world.imports import event, later
from wit_world.imports.task_types import Invocation, Outcome


class WitWorld(World):
    def run(self, invocation: Invocation) -> Outcome:
        wake = event.wake()
        if wake is not None:
            return Outcome(summary=f"woke {wake.id}: {bytes(wake.payload).decode()}")
        after_ms = int(dict(invocation.config).get("after_ms", "1"))
        wake_id = later.after(after_ms, b"from python")
        return Outcome(summary=f"asked {wake_id}")
