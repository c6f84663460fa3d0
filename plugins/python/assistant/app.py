"""Example chat plugin in Python: answers each message with Claude, giving
it the chat's recent history (so it works on the `cli` backend, which keeps
no session) and the system prompt from config `system`. When Claude cannot
answer, the user is told why.

Build: `mission build assistant-py` (or `./dev plugins`), with
componentize-py from the Python package registry."""

from componentize_py_types import Err
from wit_world import WitWorld as World
from wit_world.imports import claude, history, log
from wit_world.imports.chat_types import Message, Reply
from wit_world.imports.common import (
    CapabilityError_Denied,
    CapabilityError_OverBudget,
    CapabilityError_TimedOut,
)

CONTEXT_ENTRIES = 10


class WitWorld(World):
    def handle(self, message: Message) -> Reply | None:
        config = dict(message.config)
        conversation = str(message.chat_id)
        try:
            earlier = history.read(conversation, CONTEXT_ENTRIES)
        except Err as e:
            raise Err(f"cannot read the history: {e.value}")
        prompt = "\n".join(
            f"{'User' if entry.role == history.Role.USER else 'Assistant'}: {entry.text}"
            for entry in earlier
        )
        prompt = f"{prompt}\nUser: {message.text}" if prompt else message.text
        options = claude.Options(
            system=config.get("system"),
            model=config.get("model"),
            max_turns=None,
            session_key=None,
            allowed_tools=[],
            timeout_ms=None,
            backend=None,
        )
        log.write(log.Level.INFO, f"asking Claude with {len(earlier)} entries of context")
        try:
            text = claude.ask(prompt, options).text
        except Err as e:
            error = e.value
            if isinstance(error, CapabilityError_OverBudget):
                text = f"I can't ask Claude right now: {error.value}."
            elif isinstance(error, CapabilityError_TimedOut):
                text = "Claude took too long to answer; please try again."
            elif isinstance(error, CapabilityError_Denied):
                text = f"I'm not allowed to ask Claude: {error.value}."
            else:
                text = f"Claude could not answer: {getattr(error, 'value', error)}"
        return Reply(text=text, parse_mode=None)
