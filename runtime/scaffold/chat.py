"""{{name}}: a chat plugin. It answers each message with what it heard, how
many earlier messages the chat's history holds, and how many it has answered
in all (kept in its private state).

Build: `mission build {{name}}` (componentize-py)."""

from componentize_py_types import Err
from wit_world import WitWorld as World
from wit_world.imports import history, log, state
from wit_world.imports.chat_types import Message, Reply


class WitWorld(World):
    def handle(self, message: Message) -> Reply | None:
        try:
            earlier = history.read(str(message.chat_id), 100)
            answered = int(state.get("answered") or "0") + 1
            state.set("answered", str(answered))
        except Err as e:
            raise Err(f"capability: {e.value}")
        said = sum(1 for entry in earlier if entry.role == history.Role.USER)
        log.write(log.Level.INFO, f"message from {message.sender_name} in chat {message.chat_id}")
        return Reply(
            text=f"{{name}} heard: {message.text} ({said} earlier in this chat, {answered} answered in all)",
            parse_mode=None,
        )
