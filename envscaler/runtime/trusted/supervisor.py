"""The trusted side of the worker protocol: start the zygote, fork episode
workers, talk to them under deadlines and kill them when they overrun.

Nothing here imports or executes environment code.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envscaler.runtime import channel, procfs
from envscaler.runtime.messages import CHANNEL_FAILURES, WorkerKind
from envscaler.runtime.trusted import teardown, wire
from envscaler.runtime.trusted.channel_watch import ChannelWatch
from envscaler.runtime.trusted.launcher import worker_argv, worker_env
from envscaler.runtime.trusted.wire import ReplyKind
from envscaler.v1 import worker_pb2 as wpb

CONTROL_FRAME_BYTES = 64 << 10
SWEEP_SECONDS = 2.0  # for the zygote to end and verify what an episode left (the server's teardown past it)
CHECK_RESULT_BYTES = 64 << 10  # one check's result line: an outcome and a clipped message
# The requests without fields, encoded once.
PING = wire.encode(wpb.WorkerRequest(ping=wpb.WorkerPing()))
NEXT = wire.encode(wpb.WorkerRequest(next=wpb.WorkerNext()))
SPAWN = wpb.WorkerRequest(spawn=wpb.WorkerSpawn())
RENEW = wpb.WorkerRequest(renew=wpb.WorkerRenew())


class WorkerError(Exception):
    """A failure with its kind (one of proto's ErrorKinds: envscaler/runtime/messages.py)."""

    def __init__(self, kind: WorkerKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class WorkerSettings:
    env_id: str
    code: str
    class_name: str
    tools: tuple[str, ...]
    observation: str = "repr"  # "repr" (EnvScaler's str(result)) or "json"
    max_result_bytes: int = 1 << 20
    max_state_bytes: int = 48 << 20  # a state (Reset's, GetState's) the caller asked for: not a tool result
    memory_bytes: int = 0  # RLIMIT_AS per worker; 0 leaves it to the container
    file_bytes: int = 64 << 20
    open_files: int = 256
    load_timeout: float = 30.0
    # What the zygote cleans between leases: "" on a host (nothing: /tmp is the user's), "container" (files, IPC and
    # every other process: one uid), "split" (files and IPC; the server ends the sandbox uid's processes).
    sandbox: str = ""

    @property
    def max_frame_bytes(self) -> int:
        # A result and its observation, or a state, with JSON escaping.
        return max(4 * self.max_result_bytes, 2 * self.max_state_bytes) + (64 << 10)

    def load_message(self) -> bytes:
        return wire.encode(wpb.WorkerRequest(load=wpb.WorkerLoad(
            code=self.code, class_name=self.class_name, env_id=self.env_id, tools=list(self.tools),
            observation=self.observation, sandbox=self.sandbox, max_result_bytes=self.max_result_bytes,
            max_state_bytes=self.max_state_bytes,
            limits=wpb.WorkerLimits(memory_bytes=self.memory_bytes, file_bytes=self.file_bytes,
                                    open_files=self.open_files))))


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def read_check_result(fd: int, timeout: float) -> dict[str, Any]:
    """One check's result from the channel only that check holds: exactly one JSON line, then end of file, within
    the check's deadline. Anything else is that check's ERROR."""
    deadline = time.monotonic() + timeout
    data = b""
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):  # handed over by the worker: only a pipe reads as a pipe reads
        return {"outcome": "ERROR", "message": "the check's result channel is not a pipe"}
    os.set_blocking(fd, False)  # select() may say readable where read() would block (an out-of-band byte)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return {"outcome": "ERROR", "message": f"check_func overran its {timeout:g} s deadline"}
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        except OSError as exc:
            return {"outcome": "ERROR", "message": f"check_func's result channel broke: {exc.strerror}"}
        if not chunk:
            break
        data += chunk
        if len(data) > CHECK_RESULT_BYTES:
            return {"outcome": "ERROR", "message": "check_func wrote more than its result to its result channel"}
    if not data:
        return {"outcome": "ERROR", "message": "check_func ended without a result (the check's process died)"}
    lines = data.split(b"\n")
    try:
        if len(lines) != 2 or lines[1]:
            raise ValueError
        result = json.loads(lines[0])
        if not isinstance(result, dict) or result.get("outcome") not in ("PASS", "FAIL", "ERROR") \
                or not isinstance(result.get("message", ""), str):
            raise ValueError
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {"outcome": "ERROR", "message": "check_func wrote to its result channel itself; its result is void"}
    return {"outcome": result["outcome"], "message": result.get("message", "")[:2000]}


@dataclass
class EpisodeWorker:
    """One forked worker holding one episode's live instance."""

    zygote: Zygote
    pid: int
    sock: socket.socket
    pidfd: int | None
    broken: str = ""  # why the episode can take no more requests
    closed: bool = field(default=False)
    watch: ChannelWatch | None = None  # its episode channel, once a caller asked for one

    def attach(self, conn: socket.socket, episode_id: str, max_argument_bytes: int,
               on_hangup: Callable[[], None], timeout: float) -> None:
        """Hand the caller's connection to the worker, which answers its CallTool requests from now on."""
        assert self.pidfd is not None  # every worker comes with one (Zygote._handover_problem)
        if self.broken:
            raise WorkerError("EPISODE_BROKEN", self.broken)
        try:
            reply = self.request(wpb.WorkerRequest(attach=wpb.WorkerAttach(
                episode_id=episode_id, max_argument_bytes=max_argument_bytes)), timeout,
                "the episode channel's hand-over", ("done",), fds=[conn.fileno()])
            if reply.HasField("failure"):
                raise self._fail("PROTOCOL_ERROR", "the episode channel's hand-over", detail=reply.failure.message)
        except WorkerError:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            raise
        self.watch = ChannelWatch(conn, self.pidfd, on_hangup)  # from here on the watch owns the connection

    def check_channel(self) -> None:
        """Before a request by the server's own path: a channel its caller closed has ended the episode, even if
        the watching thread has not acted yet (a worker that died is left for the request to find out how)."""
        if self.watch is not None and not self.broken and not self.watch.worker_gone() and self.watch.hung_up():
            self.hang_up()

    def stuck(self, probe: float) -> bool:
        """Whether the worker is inside a call: it does not answer a ping within `probe` seconds."""
        try:
            body = channel.exchange(self.sock, PING, CONTROL_FRAME_BYTES, time.monotonic() + probe)
            return wire.read_reply(body, ("done",)).HasField("failure")
        except channel.FrameError as exc:
            return exc.reason != "eof"  # a worker that died was not stuck; one that answers amiss is no better

    def channel_failed(self, kind: WorkerKind, seconds: float) -> WorkerError:
        """The caller's call on the channel overran its deadline, or got an answer no channel may carry: the episode
        ends as if the server had seen it itself."""
        return self._fail(kind, "a tool call on the episode channel", seconds,
                          "an answer on the channel that is not a CallToolResponse")

    def hang_up(self) -> None:
        """The caller closed the episode channel: at a call's deadline, or gone. The episode ends here."""
        self.kill()  # the zygote reaps it
        # Either end may have closed it (the worker shares the server's end): neither is blamed.
        self.broken = ("the episode is broken: its episode channel was closed (by its caller, gone or giving up on a "
                       "call, or by the worker itself) and its worker was killed. Reset to start a new one.")
        self._end_channel()

    def _end_channel(self) -> None:
        if self.watch is not None:
            self.watch.stop()

    def request(self, message: wpb.WorkerRequest, timeout: float, what: str, expect: tuple[ReplyKind, ...],
                fds: list[int] | None = None) -> wpb.WorkerReply:
        """One exchange: a reply of a kind in `expect`, or a failure (wire.read_reply); anything else is the worker
        breaking the protocol (it is killed)."""
        if self.broken:
            raise WorkerError("EPISODE_BROKEN", self.broken)
        try:
            body = channel.exchange(self.sock, wire.encode(message), self.zygote.settings.max_frame_bytes,
                                    time.monotonic() + timeout, fds)
            return wire.read_reply(body, expect)
        except channel.FrameError as exc:
            kind = CHANNEL_FAILURES[exc.reason]
            raise self._fail(kind, what, timeout, str(exc)) from None

    def _fail(self, kind: WorkerKind, what: str, timeout: float = 0.0, detail: str = "") -> WorkerError:
        died_by_itself = self.pidfd is not None and bool(select.select([self.pidfd], [], [], 0)[0])
        self.kill()
        status = self.zygote.reap(self.pid)
        if kind == "DEADLINE_EXCEEDED":
            message = f"{what} overran its {timeout:g} s deadline; the worker was killed"
        elif kind == "WORKER_CRASHED":
            # Nothing here sends SIGKILL but a deadline (reported above): the kernel's OOM killer does.
            hint = "; most likely the container's memory limit: raise --memory-mb" \
                if died_by_itself and "SIGKILL" in status else ""
            message = f"the worker died during {what} ({status}{hint})"
        else:
            message = f"the worker broke the protocol during {what} ({detail}); it was killed"
        self.broken = f"the episode is broken: {message}. Reset to start a new one."
        self._end_channel()
        return WorkerError(kind, message)

    def kill(self) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        else:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        _kill_group(self.pid)  # tools may have forked; the worker leads its own group

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._end_channel()
        if not self.broken:
            self.kill()  # a worker never outlives its episode, whatever its code does on EOF
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)

    def evaluate(self, checks: list[str], check_timeout: float, timeout: float) -> list[dict[str, Any]]:
        """Each check runs in its own process forked from the worker, which hands us the read end of that check's
        own pipe: we read the result under the check's deadline, so no check can write another's result, outlive
        its deadline by trickling bytes, or break the episode (the worker goes on)."""
        if self.broken:
            raise WorkerError("EPISODE_BROKEN", self.broken)
        deadline = time.monotonic() + timeout
        results: list[dict[str, Any]] = []
        try:
            channel.set_deadline(self.sock, deadline)
            channel.send(self.sock, wire.encode(wpb.WorkerRequest(evaluate=wpb.WorkerEvaluate(checks=checks))))
            for _ in checks:
                body, fds = channel.recv_with_fds(self.sock, CONTROL_FRAME_BYTES, 1, deadline)
                try:
                    reply = wire.read_reply(body, ("check",))
                    if reply.HasField("failure") or len(fds) != 1:
                        raise channel.FrameError("protocol", reply.failure.message or "no result channel for a check")
                except channel.FrameError:
                    for fd in fds:
                        os.close(fd)
                    raise
                try:
                    results.append(read_check_result(fds[0], min(check_timeout, deadline - time.monotonic())))
                finally:
                    os.close(fds[0])
                channel.set_deadline(self.sock, deadline)
                channel.send(self.sock, NEXT)
            done = wire.read_reply(channel.recv(self.sock, CONTROL_FRAME_BYTES, deadline), ("done",))
        except channel.FrameError as exc:
            kind = CHANNEL_FAILURES[exc.reason]
            raise self._fail(kind, "Evaluate", timeout, str(exc)) from None
        if done.HasField("failure"):
            raise self._fail("PROTOCOL_ERROR", "Evaluate", detail="no end of evaluation")
        return results


class Zygote:
    """A worker process that loaded the environment module once; forks an episode worker per Reset.

    In a sandbox container a zygote lives for one lease only: it runs environment code all along, so at the end of
    the lease it is ended with every process of its uid, and a fresh one (which cleans the sandbox before it loads
    anything) serves the next. With `sandbox_uid` it runs as that uid, with no capability."""

    def __init__(self, settings: WorkerSettings, sandbox_uid: int | None = None) -> None:
        self.settings = settings
        self.sandbox_uid = sandbox_uid
        self.uid = os.getuid() if sandbox_uid is None else sandbox_uid  # what its workers run as
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.pid = 0
        self.control: socket.socket | None = None
        self.untouched = False  # started fresh (sandbox wiped) and no episode since
        # The next lease's interpreter, started during this lease (split sandboxes only): python and the worker's
        # imports are paid before the release. It waits for its load message as the server's uid, never the
        # sandbox's: this lease's code cannot reach it, and the release's sweep of the sandbox uid leaves it be.
        self.next: tuple[subprocess.Popen[bytes], socket.socket] | None = None
        # The next episode's worker, handed over ahead by `refill` (after a lease's second Reset): a Reset then
        # skips the round trip to the zygote. It is dropped with its zygote and at every lease's end.
        self.ready: EpisodeWorker | None = None
        self.refill_wanted = threading.Event()
        self.lease = 0  # counts renewals: a refill asked for during one lease is not taken in the next
        self.wanted_for = 0  # the lease the last refill was asked for
        self.refiller: threading.Thread | None = None

    def _launch(self) -> tuple[subprocess.Popen[bytes], socket.socket]:
        """A fresh interpreter for a zygote, and our end of its control socket; it waits for its load message."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = subprocess.Popen(worker_argv(theirs.fileno(), self.sandbox_uid), pass_fds=[theirs.fileno()],
                                       env=worker_env(), stdin=subprocess.DEVNULL, cwd="/")
        except OSError as exc:
            ours.close()
            raise WorkerError("LOAD_FAILED", f"the zygote could not be started: {exc}") from None
        finally:
            theirs.close()
        return process, ours

    def wants_next(self) -> bool:
        """Whether a lease's zygote is started ahead (split sandboxes) and none is waiting yet."""
        return self.next is None and self.sandbox_uid is not None and bool(self.settings.sandbox)

    def prestart(self) -> None:
        """Start the next lease's interpreter now, if wanted (best effort)."""
        with self.lock:
            if self.wants_next():
                with contextlib.suppress(WorkerError):
                    self.next = self._launch()

    def _take_next(self) -> tuple[subprocess.Popen[bytes], socket.socket] | None:
        waiting, self.next = self.next, None
        if waiting is not None and waiting[0].poll() is not None:  # it died waiting (the OOM killer): start anew
            _end(*waiting)
            return None
        return waiting

    def start(self) -> None:
        """Start (or restart) the zygote and load the module; raises WorkerError(LOAD_FAILED)."""
        waiting = self._take_next()
        if waiting is not None:
            try:
                self._load(waiting)
                return
            except WorkerError:
                pass  # a fresh interpreter decides: the one started ahead may have met something this one will not
        self._load(self._launch())

    def _load(self, launched: tuple[subprocess.Popen[bytes], socket.socket]) -> None:
        self.stop()
        self.process, self.control = launched
        self.pid = self.process.pid
        try:
            reply = wire.read_reply(channel.exchange(self.control, self.settings.load_message(), CONTROL_FRAME_BYTES,
                                                     time.monotonic() + self.settings.load_timeout), ("done",))
        except channel.FrameError as exc:
            self._give_up("its module load failed")
            reason = f"took longer than {self.settings.load_timeout:g}s" if exc.reason == "timeout" else str(exc)
            raise WorkerError("LOAD_FAILED", f"the environment module failed to load: {reason}") from None
        if reply.HasField("failure"):
            self._give_up("its module load failed")
            raise WorkerError("LOAD_FAILED", reply.failure.message or "unknown load failure")
        self.untouched = bool(self.settings.sandbox)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _control_request(self, message: wpb.WorkerRequest, timeout: float, expect: tuple[ReplyKind, ...],
                         max_fds: int = 0) -> tuple[wpb.WorkerReply, list[int]]:
        """One exchange with the zygote: a reply of a kind in `expect` or a failure (wire.read_reply), and the
        descriptors that came with it (closed here if the reply is not one)."""
        assert self.control is not None
        deadline = time.monotonic() + timeout
        channel.set_deadline(self.control, deadline)
        channel.send(self.control, wire.encode(message))
        body, fds = channel.recv_with_fds(self.control, CONTROL_FRAME_BYTES, max_fds, deadline) if max_fds \
            else (channel.recv(self.control, CONTROL_FRAME_BYTES, deadline, deadline_set=True), [])
        try:
            return wire.read_reply(body, expect), fds
        except channel.FrameError:
            for fd in fds:
                os.close(fd)
            raise

    def _handed_over(self) -> EpisodeWorker:
        """Under the lock: the zygote's next worker (it forks another behind it), checked against the kernel."""
        try:
            reply, fds = self._control_request(SPAWN, 10.0, ("spawned",), max_fds=2)
        except (channel.FrameError, OSError) as exc:
            self._give_up(f"it failed while handing over a worker: {exc}")
            raise WorkerError("WORKER_CRASHED", f"the zygote failed while forking a worker: {exc}") from None
        problem = self._handover_problem(reply, fds)
        if problem:
            for fd in fds:
                os.close(fd)
            self._give_up(f"it handed over no valid worker: {problem}")
            raise WorkerError("PROTOCOL_ERROR", f"the zygote did not hand over a worker ({problem}); it was ended")
        return EpisodeWorker(self, reply.spawned.pid, socket.socket(fileno=fds[0]), fds[1])

    def _take_ready(self) -> EpisodeWorker | None:
        """Under the lock: the worker taken ahead (refill), if it still lives."""
        worker, self.ready = self.ready, None
        if worker is not None and worker.pidfd is not None and select.select([worker.pidfd], [], [], 0)[0]:
            worker.close()  # it died waiting (the OOM killer): a fresh one
            return None
        return worker

    def refill(self, lease: int) -> None:
        """Take the zygote's next worker now, off any Reset's path, so the next Reset skips that round trip (best
        effort: a failure is the next Reset's to meet). Only for the lease that asked: an idle container keeps no
        worker taken ahead."""
        with self.lock:
            if lease == self.lease and self.ready is None and self.alive():
                with contextlib.suppress(WorkerError):
                    self.ready = self._handed_over()

    def want_refill(self) -> None:
        """Ask for a refill in the background (one thread per zygote, started on first use)."""
        if self.refiller is None:
            self.refiller = threading.Thread(target=self._refill_loop, daemon=True, name="refill")
            self.refiller.start()
        self.wanted_for = self.lease
        self.refill_wanted.set()

    def _refill_loop(self) -> None:
        while True:
            self.refill_wanted.wait()
            self.refill_wanted.clear()
            self.refill(self.wanted_for)

    def _drop_ready(self) -> None:
        """A worker taken ahead never outlives its lease, nor its zygote."""
        worker, self.ready = self.ready, None
        if worker is not None:
            worker.close()

    def spawn(self, init_config: dict[str, Any] | bytes, seed: int,
              timeout: float) -> tuple[EpisodeWorker, wpb.WorkerState]:
        """A fresh worker (taken ahead, or handed over now) with the environment instantiated in it (`init_config`:
        an object, or its JSON text as a bundle holds it); returns it and its initial state."""
        with self.lock:
            if not self.alive():
                self.start()
            self.untouched = False
            worker = self._take_ready() or self._handed_over()
        config = init_config if isinstance(init_config, bytes) else json.dumps(init_config).encode()
        first = worker.request(wpb.WorkerRequest(reset=wpb.WorkerReset(init_config_json=config, seed=seed)),
                               timeout, "reset", ("state",))
        del config
        if first.HasField("failure"):
            worker.close()
            raise WorkerError(*wire.failure_of(first.failure))
        return worker, first.state

    def _handover_problem(self, reply: wpb.WorkerReply, fds: list[int]) -> str:
        """The zygote runs environment code: its word is checked against the kernel's. The worker must come with a
        pidfd, for the pid it claims, of a process of the sandbox's uid whose parent is the zygote; only then does
        the server (which may signal any process) ever signal it."""
        if not reply.HasField("spawned") or len(fds) != 2 or not reply.spawned.pidfd:
            return "a reply without a worker socket, a pidfd and a pid"
        pid = reply.spawned.pid
        # Read as bytes: a worker names itself (a name that is not UTF-8 must not make the check fail open or raise).
        if procfs.pidfd_pid(fds[1]) != pid:
            return f"a pidfd that is not of process {pid}"
        seen = procfs.status(pid)
        if seen is None:
            return f"no process {pid}"
        if seen.ppid != self.pid or seen.uids != (self.uid,) * len(seen.uids):
            return f"process {pid} is not a child of the zygote running as uid {self.uid}"
        try:
            with socket.socket(fileno=os.dup(fds[0])) as channel:
                if channel.family == socket.AF_UNIX and channel.type == socket.SOCK_STREAM:
                    return ""
        except OSError:  # not a socket at all
            pass
        return "a worker channel that is not a Unix stream socket"

    def sweep(self) -> None:
        """Between two episodes: the zygote ends what the last one left running and empties /tmp, /dev/shm and
        System V IPC (in a sandbox container only)."""
        with self.lock:
            if not self.alive():
                return
            try:  # the worker taken ahead is the next episode's: kept
                keep = [self.ready.pid] if self.ready else []
                reply, _ = self._control_request(wpb.WorkerRequest(sweep=wpb.WorkerSweep(keep=keep)),
                                                 SWEEP_SECONDS + 2.0, ("done",))
            except (channel.FrameError, OSError) as exc:
                self._give_up(f"it failed the sweep between episodes: {exc}")
                return
            if reply.HasField("failure"):  # it could not verify the sweep: the kernel's teardown does it
                self._give_up(f"its sweep between episodes left processes: {reply.failure.message[:200]}")

    def renew(self) -> None:
        """Between leases. In a sandbox: end the zygote and every process of its uid, verified (teardown.py), then
        start a fresh zygote, which cleans the sandbox before it loads the module and answers once its first
        worker is ready; raises WorkerError when it cannot (the container must then be replaced). On a host: the
        zygote forks a fresh worker, proven ready."""
        with self.lock:
            self.lease += 1
            self._drop_ready()  # it was forked during the lease that ends
            if self.settings.sandbox:
                if self.untouched and self.alive():
                    return  # fresh, and no episode has run since: nothing of any lessee has entered the sandbox
                problem = self.stop(teardown=True)
                if problem:  # never handed out: the pool retires a container whose EndEpisode fails
                    raise WorkerError("LOAD_FAILED", problem)
                self.start()
                return
            if not self.alive():
                return
            try:
                renewed = self._control_request(RENEW, 10.0, ("done",))[0].HasField("done")
            except (channel.FrameError, OSError):
                renewed = False
            if not renewed:
                self._give_up("it failed to renew between leases")

    def reap(self, pid: int) -> str:
        """How a dead worker ended (asked of the zygote, its parent)."""
        with self.lock:
            if not self.alive():
                return "its zygote is gone too"
            try:
                reply, _ = self._control_request(wpb.WorkerRequest(reap=wpb.WorkerReap(pid=pid)), 5.0, ("reaped",))
            except (channel.FrameError, OSError) as exc:
                self._give_up(f"it failed to say how a worker ended: {exc}")
                return "status unknown"
        return reply.reaped.status or "status unknown"

    def end_now(self) -> None:
        """From any thread, at a release: every process of the lease ends now by the kernel's teardown, so no
        request in flight holds the release back (it fails at once); `renew` then verifies the uid empty. A zygote
        no episode has touched is left be (a pool's first EndEpisode); on a host there is no sandbox uid to end."""
        process = self.process
        if self.settings.sandbox and not self.untouched and process is not None:
            self._end_sandbox(process)

    def _give_up(self, why: str) -> None:
        """End a zygote that failed the server, and say so on the server's stderr (the container's log): the one
        trace an operator has of a Reset that then finds no zygote."""
        status = self.process.poll() if self.process is not None else None
        state = "running" if status is None else f"already exited with status {status}"
        print(f"envscaler-runtime: zygote {self.pid} ended by the server ({state}): {why}", file=sys.stderr,
              flush=True)
        self.stop()

    def stop(self, teardown: bool = False) -> str:
        """End the zygote; in a sandbox, with every process of its uid (verified: its workers, whatever they did,
        are this lease's). Returns "" or why the sandbox could not be verified empty (`teardown`: even with no
        zygote running)."""
        self._drop_ready()
        process, control = self.process, self.control
        self.process, self.control, self.pid = None, None, 0
        if control is not None:
            with contextlib.suppress(OSError):
                control.close()
        problem = ""
        if self.settings.sandbox and (process is not None or teardown):
            problem = self._end_sandbox(process)
        if process is not None:
            _end(process)
        return problem

    def _end_sandbox(self, zygote: subprocess.Popen[bytes] | None) -> str:
        """Every process of the sandbox uid, ended as the kernel sees them (envscaler/runtime/trusted/teardown.py)."""
        def reap() -> None:
            if zygote is not None:
                zygote.poll()

        if self.sandbox_uid is not None:
            problem = teardown.end_uid(self.uid, worker_env(), reap=reap)
        else:  # one uid for the server and the sandbox: each pid but ours
            problem = procfs.end_pids(self.uid, frozenset({os.getpid()}),
                                      time.monotonic() + teardown.TEARDOWN_SECONDS, reap)
        if problem:
            print(f"envscaler-runtime: the sandbox's teardown could not be verified: {problem}", file=sys.stderr,
                  flush=True)
        return problem

    def close(self) -> None:
        """The server's end: the zygote, and the interpreter waiting for the next lease."""
        self.stop()
        with self.lock:
            waiting, self.next = self.next, None
        if waiting is not None:
            _end(*waiting)


def _end(process: subprocess.Popen[bytes], control: socket.socket | None = None) -> None:
    if control is not None:
        with contextlib.suppress(OSError):
            control.close()
    if process.poll() is None:
        process.kill()
    process.wait()
