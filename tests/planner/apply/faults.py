"""Faults injected at the HTTP layer: botocore hands these responses back instead of calling moto.

A `before-send` handler returns a real HTTP error response (status and AWS
query-protocol XML), so botocore parses it and its retry handler reacts exactly
as to a throttled or refused call from AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def error_response(code: str, message: str, status: int = 400) -> AWSResponse:
    body = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>fault</RequestId></ErrorResponse>"
    ).encode()
    return AWSResponse("http://fault", status, {"Content-Type": "text/xml"}, _Raw(body))


def inject(
    session: Any, event: str, code: str, times: int, when: Callable[[Any], bool] | None = None
) -> list[int]:
    """Answer the next `times` matching calls with error `code`; returns a hit counter."""
    hits = [0]

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        if hits[0] >= times or (when is not None and not when(request)):
            return None
        hits[0] += 1
        return error_response(code, f"injected {code}")

    session.events.register(f"before-send.{event}", handler)
    return hits
