"""Test fixture in Python: a task plugin that GETs the URL in its config
with componentize-py's stock `poll_loop` helper (over `wasi:http`) and
reports `status=..|body=..`, or `error=..` when the host refuses.

Built from the repository's `wit/` by `componentize-py -d wit -w task
componentize app`."""

import asyncio
from urllib.parse import urlparse

import poll_loop
from poll_loop import PollLoop, Sink, Stream
from componentize_py_types import Err
from wit_world import WitWorld as World
from wit_world.imports import log
from wit_world.imports.task_types import Invocation, Outcome
from wit_world.imports.types import (
    Fields,
    Method_Get,
    OutgoingBody,
    OutgoingRequest,
    Scheme_Http,
    Scheme_Https,
)


class WitWorld(World):
    def run(self, invocation: Invocation) -> Outcome:
        config = dict(invocation.config)
        url = config.get("url")
        if url is None:
            raise Err("config `url` is required")
        loop = PollLoop()
        asyncio.set_event_loop(loop)
        try:
            summary = loop.run_until_complete(get(url))
        except Err as e:
            summary = f"error={e.value}"
        log.write(log.Level.INFO, summary)
        return Outcome(summary=summary)


async def get(url: str) -> str:
    parsed = urlparse(url)
    request = OutgoingRequest(Fields.from_list([]))
    request.set_method(Method_Get())
    request.set_scheme(Scheme_Https() if parsed.scheme == "https" else Scheme_Http())
    request.set_authority(parsed.netloc)
    request.set_path_with_query(parsed.path or "/")
    sink = Sink(request.body())
    sink.close()
    response = await poll_loop.send(request)
    status = response.status()
    stream = Stream(response.consume())
    body = b""
    while True:
        chunk = await stream.next()
        if chunk is None:
            break
        body += chunk
    return f"status={status}|body={body.decode()}"
