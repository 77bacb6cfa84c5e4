"""Listening addresses are exclusive: a server refuses an address that another one already listens on.

gRPC sets SO_REUSEPORT by default, so a second server on a busy TCP port binds without a word and the
kernel splits new connections between the two; on a Unix socket gRPC unlinks the path and takes it over.
Servers here turn SO_REUSEPORT off (NO_REUSEPORT) and look before they bind (ensure_free), which also
spares the user gRPC's own log line about the failed bind.
"""

from __future__ import annotations

import errno
import socket

NO_REUSEPORT = ("grpc.so_reuseport", 0)

# Where a sandbox container's server listens: a directory that is the server's alone, shared with the host by a
# mount (envscaler/containers/launch.py) and made by the image (envscaler/images/env_image.py).
SOCKET_DIR = "/run/envscaler"
SOCKET = f"{SOCKET_DIR}/env.sock"


def grpc_address(listen: str) -> str:
    """`unix:/path` or `tcp:HOST:PORT` (also plain HOST:PORT) as grpc wants it."""
    if listen.startswith("unix:"):
        return listen
    if listen.startswith("tcp:"):
        return listen[4:]
    if ":" in listen:
        return listen
    raise ValueError(f"listen address {listen!r}: expected unix:/path or tcp:HOST:PORT")


def session_socket_path(address: str) -> str:
    """Where a server with the gRPC socket `unix:.../env.sock` puts its session socket: .../env.session.sock."""
    path = address.removeprefix("unix:")
    return (path[:-5] if path.endswith(".sock") else path) + ".session.sock"


class AddressInUse(OSError):
    """Another server listens on the address; the message is one line: `address HOST:PORT is in use`."""

    def __str__(self) -> str:
        return str(self.strerror)


def _host_port(address: str) -> tuple[str, int] | None:
    host, _, port = address.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return None


def in_use(address: str) -> AddressInUse:
    return AddressInUse(errno.EADDRINUSE, f"address {address} is in use")


def ensure_free(address: str) -> None:
    """Raise AddressInUse when something listens on `address` (as gRPC writes it: HOST:PORT or unix:/path).
    Other problems (a host that does not resolve, no permission) are left for the real bind to report."""
    if address.startswith("unix:"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2.0)
            try:
                probe.connect(address[5:])
            except OSError:  # no such file, a stale socket nobody listens on, not a socket: free
                return
        raise in_use(address)
    parts = _host_port(address)
    if parts is None or parts[1] == 0:
        return
    host, port = parts
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no owner
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise in_use(address) from None


def bind_failure(address: str, reason: object) -> OSError:
    """The error for a bind that failed (gRPC's RuntimeError carries no cause): in use, or why not."""
    try:
        ensure_free(address)
    except AddressInUse as exc:
        return exc
    return OSError(f"cannot listen on {address}: {reason}")
