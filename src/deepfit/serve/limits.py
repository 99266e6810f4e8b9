"""What a served request may be: its body's size (an ASGI middleware that answers 413 before
anything is parsed) and its JSON's shape (a pydantic model, so FastAPI validates it and writes
it into the OpenAPI schema at /docs)."""

from __future__ import annotations

import json
from typing import Any


class BodyLimit:
    """ASGI middleware: a request whose Content-Length exceeds `max_bytes` is answered 413 at
    once; any other body is read here, its bytes counted as they stream (a chunked body has no
    length to trust), answered 413 as soon as they pass the limit, and replayed to the app."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared < 0:
                await _answer(send, 400, "the Content-Length header is not a number")
                return
            if declared > self.max_bytes:
                await self._too_large(send)
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, sent = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Any) -> None:
        await _answer(send, 413, f"body: the request body is over the limit of {self.max_bytes:,} "
                                 "bytes (deepfit serve --max-body-mb)")


async def _answer(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message, "field": "body"}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def request_model(max_rows: int) -> type:
    """The pydantic model of POST /predict's body: an optional model id and 1 to `max_rows`
    records, each a JSON object (its fields are checked by the run's modality)."""
    from pydantic import BaseModel, Field

    class PredictRequest(BaseModel):
        model: str | None = Field(None, description="the model id (GET /models); default: the first run")
        records: list[dict[str, Any]] = Field(
            ..., min_length=1, max_length=max_rows,
            description=f"1 to {max_rows} samples: the training columns, or {{'image': base64}}, "
                        "or {'values': nested numbers}")

    return PredictRequest
