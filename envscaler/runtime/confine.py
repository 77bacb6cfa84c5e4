"""Kernel fences inside a sandbox, from the standard library only (ctypes): non-dumpable
processes, Landlock domains, and the privilege split between the trusted server and
the untrusted side.

Who runs what in a sandbox container (see SECURITY.md and launcher.py): the zygote,
its workers and checks run as the sandbox uid with no capabilities, each worker and
check in a Landlock domain of its own; the server runs as its own uid with CAP_KILL
alone; both are non-dumpable.
"""

from __future__ import annotations

import ctypes
import os
import struct
from dataclasses import dataclass

PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP = 5, 6, 7, 8
CAP_LAST = 63
_CAP_VERSION_3 = 0x20080522

SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_RESTRICT_SELF = 444, 446  # the same on every architecture
_LANDLOCK_CREATE_RULESET_VERSION = 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
# Every right that changes the file system, by the ABI that introduced it.
_FS_WRITE = {1: (1 << 1) | (1 << 4) | (1 << 5) | sum(1 << b for b in range(6, 13)), 2: 1 << 13, 3: 1 << 14,
             5: 1 << 15}

_libc = ctypes.CDLL(None, use_errno=True)


class ConfineError(OSError):
    """A fence could not be put up."""


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise ConfineError(errno, f"{what}: {os.strerror(errno)}")
    return result


def prctl(option: int, arg: int = 0, arg3: int = 0) -> int:
    return _check(_libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(arg3), 0, 0), f"prctl({option})")


def set_non_dumpable() -> None:
    """No process of another uid, nor of the same uid without CAP_SYS_PTRACE, may ptrace this one or open its
    /proc/<pid>/{mem,environ,fd,maps}; inherited by fork."""
    prctl(PR_SET_DUMPABLE, 0)


def is_dumpable() -> bool:
    return bool(_libc.prctl(3, 0, 0, 0, 0) == 1)  # PR_GET_DUMPABLE


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when it has none (or a seccomp profile hides it)."""
    version = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, _LANDLOCK_CREATE_RULESET_VERSION)
    return max(int(version), 0)


def landlock(*, deny_writes: bool = False, abi: int | None = None) -> int:
    """Enter a new Landlock domain for this process and all it forks: no signal to, no ptrace of, and no abstract
    Unix socket connection to any process outside the domain; no TCP bind or connect; with `deny_writes`, no change
    to any file (already open descriptors stay usable). Returns the ABI used, 0 when the kernel has no Landlock."""
    abi = landlock_abi() if abi is None else abi
    if abi <= 0:
        return 0
    fs = sum(bits for since, bits in _FS_WRITE.items() if since <= abi) if deny_writes else 0
    net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    if abi < 6 and not fs and not net:
        return 0  # nothing this kernel can scope for us (ptrace scoping comes with any domain, though)
    attr = struct.pack("=QQQ", fs, net, scoped) if abi >= 6 else struct.pack("=QQ", fs, net) if abi >= 4 \
        else struct.pack("=Q", fs or _FS_WRITE[1])
    buffer = ctypes.create_string_buffer(attr, len(attr))
    fd = _check(_libc.syscall(SYS_LANDLOCK_CREATE_RULESET, buffer, ctypes.c_size_t(len(attr)), 0),
                "landlock_create_ruleset")
    try:
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        _check(_libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0), "landlock_restrict_self")
    finally:
        os.close(fd)
    return abi


def _capset(effective: int, permitted: int, inheritable: int = 0) -> None:
    header = struct.pack("=Ii", _CAP_VERSION_3, 0)
    data = struct.pack("=6I", effective, permitted, inheritable, 0, 0, 0)
    _check(_libc.capset(ctypes.create_string_buffer(header, len(header)),
                        ctypes.create_string_buffer(data, len(data))), "capset")


def capabilities() -> tuple[int, int]:
    """(effective, permitted) of this process, from /proc."""
    values = {}
    with open("/proc/self/status", "rb") as status:  # bytes: a process's name need not be UTF-8
        for line in status:
            if line.startswith((b"CapEff:", b"CapPrm:")):
                values[line[:6]] = int(line.split()[1], 16)
    return values.get(b"CapEff", 0), values.get(b"CapPrm", 0)


def drop_bounding(keep: tuple[int, ...] = ()) -> bool:
    """Shrink the bounding set to `keep` (needs CAP_SETPCAP; False without it): no capability outside it can ever
    come back, not even through an exec."""
    if not capabilities()[0] & (1 << CAP_SETPCAP):
        return False
    for cap in range(CAP_LAST + 1):
        if cap not in keep and _libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) < 0 \
                and ctypes.get_errno() != 22:  # EINVAL: past the kernel's last capability
            _check(-1, f"dropping capability {cap} from the bounding set")
    return True


def keep_only(*caps: int, inheritable: bool = False) -> None:
    mask = sum(1 << cap for cap in caps)
    _capset(mask, mask, mask if inheritable else 0)


def drop_to(uid: int) -> None:
    """Become `uid` (and its gid) with no capability at all: bounding set emptied first (while CAP_SETPCAP lasts),
    ambient set cleared, then every set zeroed. Raises ConfineError when any is left."""
    drop_bounding()
    prctl(47, 4)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    _capset(0, 0, 0)
    if capabilities() != (0, 0) or os.getuid() != uid:
        raise ConfineError(1, f"could not drop every capability as uid {uid}")


@dataclass(frozen=True)
class Isolation:
    """What this server's sandbox actually has, as reported by Describe."""

    server_uid: int
    sandbox_uid: int  # equal to server_uid when there is no privilege split
    landlock_abi: int
    server_non_dumpable: bool

    @property
    def split(self) -> bool:
        return self.server_uid != self.sandbox_uid
