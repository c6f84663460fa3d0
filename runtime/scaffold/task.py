"""{{name}}: a task plugin. It counts its runs in its private state, logs,
and returns a one-line summary that the host records. Config: `greeting`
(default "Hello").

More, once granted in its [plugins.{{name}}] table (docs/plugins.md):
`later` (later.after(ms, payload), at, cancel: the woken run reads
event.wake()), `notify` (notify.post(chat, Message(...)) with buttons: a
press runs it again with event.press()), and a schedule's or its own
`after` (the run reads event.parent()).

Build: `mission build {{name}}` (componentize-py)."""

from componentize_py_types import Err
from wit_world import WitWorld as World
from wit_world.imports import log, state
from wit_world.imports.task_types import Invocation, Outcome


class WitWorld(World):
    def run(self, invocation: Invocation) -> Outcome:
        config = dict(invocation.config)
        try:
            runs = int(state.get("runs") or "0") + 1
            state.set("runs", str(runs))
        except Err as e:
            raise Err(f"state: {e.value}")
        log.write(log.Level.INFO, f"run #{runs} of {invocation.name}")
        greeting = config.get("greeting", "Hello")
        return Outcome(summary=f"{greeting} from {{name}}: run #{runs}")
