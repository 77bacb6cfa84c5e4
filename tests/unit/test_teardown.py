"""The teardown's parts on this machine: /proc read as bytes (a property test of the parser), and, as root, the
helper that ends every process of a uid (a uid no one else uses, so that kill(-1) of it reaches only this test's
processes) against processes that hide from a text parser."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envscaler.runtime import procfs
from envscaler.runtime.trusted import teardown
from envscaler.runtime.trusted.launcher import worker_env

names = st.binary(max_size=40).filter(lambda b: b"\n" not in b)  # the kernel escapes a newline in a name
uids = st.integers(min_value=0, max_value=2**32 - 1)


def status_text(name: bytes, state: bytes, pid: int, ppid: int, ids: list[int]) -> bytes:
    return (b"Name:\t" + name + b"\nUmask:\t0022\nState:\t" + state + b" (whatever)\nTgid:\t%d\nNgid:\t0\nPid:\t%d\n"
            b"PPid:\t%d\nTracerPid:\t0\nUid:\t%s\nGid:\t0\t0\t0\t0\n" % (pid, pid, ppid,
                                                                        b"\t".join(b"%d" % i for i in ids)))


@given(names, st.sampled_from([b"R", b"S", b"Z", b"D", b"T", b"X"]), st.integers(1, 2**22), st.integers(0, 2**22),
       st.lists(uids, min_size=4, max_size=4))
def test_the_parser_reads_any_name_and_every_uid(name: bytes, state: bytes, pid: int, ppid: int,
                                                 ids: list[int]) -> None:
    seen = procfs.parse_status(status_text(name, state, pid, ppid, ids))
    assert seen == procfs.Status(state, pid, ppid, tuple(ids))
    assert all(seen.owned_by(uid) for uid in ids)


@given(st.binary(max_size=400))
def test_the_parser_never_raises(data: bytes) -> None:
    seen = procfs.parse_status(data)
    assert seen is None or isinstance(seen, procfs.Status)


@given(names)
def test_a_name_cannot_forge_a_line(name: bytes) -> None:
    forged = name.replace(b"\n", b"") + b"\tUid:\t0\t0\t0\t0"
    seen = procfs.parse_status(status_text(forged, b"S", 7, 1, [10002] * 4))
    assert seen is not None and seen.uids == (10002,) * 4


def test_this_process_reads_as_itself() -> None:
    seen = procfs.status(os.getpid())
    assert seen is not None and seen.pid == os.getpid() and seen.ppid == os.getppid()
    assert seen.uids[0] == os.getuid() and procfs.alive(os.getpid())
    assert procfs.status(2**22 + 1) is None and not procfs.alive(2**22 + 1)


# Processes that hide from a text parser of /proc: a leader thread gone by the raw exit call (its other thread runs,
# /proc says "Z"), a name that is not UTF-8, a fork bomb whose pids move on. Each double-forks out of our sight.
HIDING = """
import ctypes, os, platform, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
def spin():
    end = time.monotonic() + 60
    while time.monotonic() < end:
        time.sleep(0.01)
kind = sys.argv[1]
if os.fork():
    os._exit(0)
os.setsid()
if kind == "leader":
    threading.Thread(target=spin).start()
    time.sleep(0.1)
    libc.syscall({"x86_64": 60, "aarch64": 93}.get(platform.machine(), 60), 0)
elif kind == "name":
    libc.prctl(15, ctypes.c_char_p(b"\\xff\\xfehide"), 0, 0, 0)
    spin()
else:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            if os.fork():
                os._exit(0)
        except OSError:
            pass
        time.sleep(0.001)
"""


def _python_for_others() -> str:
    """An interpreter another uid may run (this venv's may sit under /root)."""
    for path in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        real = os.path.realpath(path)
        if os.path.exists(real) and not real.startswith("/root/"):
            return real
    pytest.skip("no interpreter that another uid may run")


@pytest.fixture
def subreaper() -> Iterator[None]:
    """Orphans come to us, as they come to tini in a container: we reap them."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    try:
        yield
    finally:
        libc.prctl(36, 0, 0, 0, 0)


def _reap_all() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


@pytest.mark.skipif(os.getuid() != 0, reason="the helper drops to another uid: root only")
def test_the_helper_ends_what_hides_from_a_text_parser(subreaper: None) -> None:
    uid = random.randrange(40000, 60000)
    assert not procfs.processes_of(uid)  # no one else's
    for kind in ("leader", "name", "bomb", "bomb"):
        subprocess.run([_python_for_others(), "-c", HIDING, kind], user=uid, group=uid, extra_groups=[], check=True)
    time.sleep(0.3)
    left = procfs.processes_of(uid)
    assert len(left) >= 4 and any(s.state == b"Z" and procfs.alive(pid) for pid, s in left.items()), left
    problem = teardown.end_uid(uid, worker_env(), reap=_reap_all)
    assert problem == "" and not procfs.processes_of(uid)


@pytest.mark.skipif(os.getuid() != 0, reason="the helper drops to another uid: root only")
def test_a_teardown_that_cannot_be_verified_says_so(subreaper: None) -> None:
    """A zombie no one reaps (our own child, and we do not) keeps the uid from being verified empty."""
    uid = random.randrange(40000, 60000)
    child = subprocess.Popen([_python_for_others(), "-c", "import time; time.sleep(60)"], user=uid, group=uid,
                             extra_groups=[])
    try:
        problem = teardown.end_uid(uid, worker_env(), seconds=0.5)
        assert "could not be ended" in problem and f"{child.pid} (Z)" in problem
    finally:
        child.wait()
    assert not procfs.processes_of(uid)


@pytest.mark.skipif(os.getuid() != 0, reason="its processes run as another uid: root only")
def test_end_pids_spares_what_it_keeps(subreaper: None) -> None:
    """Within one uid (no privilege split, or the zygote between episodes): every pid of it but those kept."""
    uid = random.randrange(40000, 60000)
    kept = subprocess.Popen([_python_for_others(), "-c", "import time; time.sleep(60)"], user=uid, group=uid,
                            extra_groups=[])
    subprocess.run([_python_for_others(), "-c", HIDING, "name"], user=uid, group=uid, extra_groups=[], check=True)
    try:
        time.sleep(0.2)
        assert len(procfs.processes_of(uid)) == 2
        problem = procfs.end_pids(uid, frozenset({kept.pid}), time.monotonic() + 3, _reap_all)
        assert problem == "" and kept.poll() is None and list(procfs.processes_of(uid)) == [kept.pid]
    finally:
        kept.kill()
        kept.wait()
