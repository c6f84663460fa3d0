"""Test fixture in Python: a task plugin that probes its sandbox and reports
what it reached, one `key=value` a line: files it could list or read, its
environment, its arguments, and whether a socket connected. The host grants
none of them. With config `read` or `write` (paths), it also reads or
writes that file with `open()`, as a `files` grant allows."""

import os
import socket
import sys

from wit_world import WitWorld as World
from wit_world.imports.task_types import Invocation, Outcome


def attempt(action):
    try:
        return f"reached {action()!r}"[:120]
    except Exception as e:  # what a sandboxed guest sees is an error
        return f"refused {type(e).__name__}"


class WitWorld(World):
    def run(self, invocation: Invocation) -> Outcome:
        lines = [
            f"root={attempt(lambda: os.listdir('/'))}",
            f"passwd={attempt(lambda: open('/etc/passwd').read(64))}",
            f"cwd={attempt(lambda: os.listdir('.'))}",
            f"env={sorted(os.environ)}",
            f"argv={sys.argv[1:]}",
            f"socket={attempt(lambda: socket.create_connection(('127.0.0.1', 9), timeout=1))}",
        ]
        config = dict(invocation.config)
        if "read" in config:
            lines.append(f"read={attempt(lambda: open(config['read']).read(200))}")
        if "write" in config:
            lines.append(f"write={attempt(lambda: open(config['write'], 'w').write('written by python'))}")
        return Outcome(summary="\n".join(lines))
