"""The console's gate (an ASGI middleware): an optional token, same-origin writes, and strict page headers.

With a token, the first visit carries `?token=T`; the console answers with an HttpOnly, SameSite=Strict cookie
and a redirect to the same address without the token, so it leaves the address bar and the history.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qsl, urlencode

COOKIE = "envscaler_console"
# Scripts only from the console itself (no inline script, no eval): text from LLMs cannot become code.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]


def _cookie(headers: dict[bytes, bytes]) -> str:
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return ""


def _same_origin(headers: dict[bytes, bytes]) -> bool:
    """A browser's write from another site carries its Origin; tools like curl send none and pass."""
    origin = headers.get(b"origin")
    if origin is None:
        return True
    host = headers.get(b"host", b"").decode("latin-1")
    return origin.decode("latin-1").split("://", 1)[-1] == host


class Guard:
    def __init__(self, app: Any, token: str | None) -> None:
        self.app, self.token = app, token

    async def _plain(self, send: Any, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), *HEADERS, *(extra or [])]})
        await send({"type": "http.response.body", "body": text.encode()})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if scope["method"] not in ("GET", "HEAD") and not _same_origin(headers):
            await self._plain(send, 403, "refused: a write from another origin")
            return
        if self.token is not None:
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            given = dict(query).get("token")
            if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
                rest = urlencode([(k, v) for k, v in query if k != "token"])
                location = scope["path"] + (f"?{rest}" if rest else "")
                cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                await self._plain(send, 303, "signed in", [(b"location", location.encode()),
                                                           (b"set-cookie", cookie.encode())])
                return
            if not hmac.compare_digest(_cookie(headers).encode(), self.token.encode()):
                await self._plain(send, 401, "this console needs its token: open it once with ?token=YOUR_TOKEN")
                return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)
