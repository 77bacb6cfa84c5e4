"""How a session reaches its server: one interface, two transports, chosen explicitly.

- "stream": a gRPC Session stream (envscaler/client/session_stream.py): any host, through any network.
- "socket": a session socket (envscaler/client/session_socket.py): length-prefixed frames on a Unix socket, same host
only,
  about a tenth of a gRPC message's cost in Python.

"auto" takes the socket when the pool's own address says it is on this host (a Unix socket, or a loopback TCP
address) and the lease names one; otherwise the stream. Nothing is probed on the file system: a socket that turns
out unreachable is a clear UNAVAILABLE naming it (pass transport="stream" for a pool behind a port forward).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from envscaler.protocol.auth import is_loopback

TransportChoice = Literal["auto", "socket", "stream"]
Transport = Literal["socket", "stream"]


class SessionTransport(Protocol):
    def request(self, method: str, request: Any, timeout: float) -> Any: ...

    def close(self) -> None: ...


class AsyncSessionTransport(Protocol):
    async def request(self, method: str, request: Any, timeout: float) -> Any: ...

    async def close(self) -> None: ...


def on_this_host(address: str) -> bool:
    """Whether a server address (unix:/path, tcp:HOST:PORT, HOST:PORT) is this machine's own: the same test as
    the servers' for who may reach them without a token."""
    return is_loopback(address)


def choose(choice: TransportChoice, pool_address: str, socket_path: str) -> Transport:
    if choice == "auto":
        return "socket" if socket_path and on_this_host(pool_address) else "stream"
    if choice == "socket" and not socket_path:
        raise ValueError("transport='socket': this pool offers no session socket (it listens on TCP only)")
    return choice
