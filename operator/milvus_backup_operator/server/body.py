"""Request bodies as milvus-backup's server reads them, with a bound.

milvus-backup (Gin's ``ShouldBindJSON``) decodes a body as JSON whatever its Content-Type says,
so ``curl -d '{...}'`` (form-encoded by default) works there: here too. Its requests are a few
hundred bytes: a body over ``MAX_BODY`` gets a 413.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .protocol import envelope

MAX_BODY = 1024 * 1024
#: before a 413, read and drop up to this much of the body, so that a client that sends it all
#: before reading reads the answer instead of a connection reset (nginx's "lingering close")
DRAIN_LIMIT = 64 * 1024 * 1024


class JsonBody:
    """ASGI middleware: answer 413 (in the envelope) to a body over ``limit`` bytes, whether
    it declares its length or arrives in chunks; hand on the rest whole, as JSON."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limit:
            if int(declared) <= DRAIN_LIMIT:
                await _drain(receive, {"more_body": True})
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await _drain(receive, message)
                await self._refuse(send)
                return
            if not message.get("more_body"):
                break
        whole: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]
        if size:
            scope = {**scope, "headers": _as_json(scope.get("headers") or [])}

        async def replay() -> Message:
            return whole.pop() if whole else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = envelope(None, msg=f"the request body is larger than {self.limit} bytes", code=413)
        payload = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
                   (b"content-length", str(len(payload)).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


async def _drain(receive: Receive, message: Message) -> None:
    drained = 0
    while message.get("more_body") and drained < DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))


def _as_json(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers, with a Content-Type that says JSON."""
    kept = [(k, v) for k, v in headers if k.lower() != b"content-type"]
    return [*kept, (b"content-type", b"application/json")]
