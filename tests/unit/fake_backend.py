"""An in-memory SandboxBackend (envscaler/pool/backend.py) for the pool's own logic: each "sandbox" is a real gRPC
EnvService and a real framed session socket, served by this process on Unix sockets, with answers the test sets. No
Docker, no
isolation: the pool's leases, taints, deaths and replacements are what is under test, not the sandbox.
"""

from __future__ import annotations

import itertools
import queue
import shutil
import socketserver
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from envscaler.containers.hardening import Hardening
from envscaler.pool.backend import SandboxAddress, SandboxEvent, StartFailed
from envscaler.pool.failures import StartFailure
from envscaler.protocol import framing
from envscaler.v1 import env_pb2 as pb
from envscaler.v1 import env_pb2_grpc as pb_grpc


class FakeEnvService(pb_grpc.EnvServiceServicer):
    """What a sandbox's server answers; the test changes its fields."""

    def __init__(self) -> None:
        self.tool_answer = pb.CallToolResponse(observation="ok")
        self.dirty = False  # EndEpisode says the episode was broken out of the pool's sight
        self.refuse_end = False  # EndEpisode fails
        self.hold_calls = threading.Event()  # set: CallTool blocks until released (or the server stops)
        self.release_calls = threading.Event()
        self.stopped = threading.Event()
        self.episodes = 0
        self.calls = 0
        self.reset_delay = 0.0  # seconds a Reset takes
        self.call_delay = 0.0  # seconds a CallTool takes (an honest, slow call)

    def EndEpisode(self, request: pb.EndEpisodeRequest, context: grpc.ServicerContext) -> pb.EndEpisodeResponse:
        if self.refuse_end:
            context.abort(grpc.StatusCode.INTERNAL, "the fake refuses to end its episode")
        self.episodes += 1
        return pb.EndEpisodeResponse(dirty=self.dirty, route=f"route-{self.episodes}")

    def Reset(self, request: pb.ResetRequest, context: grpc.ServicerContext) -> pb.ResetResponse:
        time.sleep(self.reset_delay)
        return pb.ResetResponse(episode_id=f"episode-{self.episodes}", scenario_id=request.scenario_id)

    def CallTool(self, request: pb.CallToolRequest, context: grpc.ServicerContext) -> pb.CallToolResponse:
        self.calls += 1
        time.sleep(self.call_delay)
        if self.hold_calls.is_set():
            self.release_calls.wait(30)
            if self.stopped.is_set():  # it died meanwhile: no answer ever comes
                context.abort(grpc.StatusCode.UNAVAILABLE, "the sandbox died")
        return self.tool_answer

    def session(self, request: pb.SessionRequest) -> pb.SessionResponse:
        kind = request.WhichOneof("request")
        if kind == "call_tool":
            self.calls += 1
            return pb.SessionResponse(call_tool=self.tool_answer)
        if kind == "reset":
            return pb.SessionResponse(reset=pb.ResetResponse(scenario_id=request.reset.scenario_id))
        return pb.SessionResponse(error=pb.SessionError(code=grpc.StatusCode.UNIMPLEMENTED.value[0], message=kind))


@dataclass(eq=False)
class FakeSandbox:
    name: str
    image: str
    labels: dict[str, str]
    directory: Path
    service: FakeEnvService = field(default_factory=FakeEnvService)
    server: Any = None
    sessions: Any = None
    alive: bool = True


class _SessionHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        service: FakeEnvService = self.server.service  # type: ignore[attr-defined]
        reader = framing.FrameReader(self.request)
        try:
            while True:
                request = pb.SessionRequest.FromString(bytes(reader.read()))
                framing.send(self.request, framing.frame(service.session(request)))
        except framing.FrameError:
            return


class _SessionServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class FakeEvents:
    def __init__(self) -> None:
        self.queue: queue.Queue[SandboxEvent | Exception | None] = queue.Queue()

    def __iter__(self) -> Iterator[SandboxEvent]:
        while (event := self.queue.get()) is not None:
            if isinstance(event, Exception):
                raise event
            yield event

    def close(self) -> None:
        self.queue.put(None)

    def lose(self) -> None:
        """The engine goes away: the stream breaks."""
        self.queue.put(ConnectionError("the fake engine went away"))


class FakeBackend:
    """SandboxBackend[FakeSandbox]. `start_failure` makes starts fail; `die_while_starting` makes the next starts
    report a death while they wait for readiness (the race a real engine has)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sandboxes: dict[str, FakeSandbox] = {}
        self.streams: list[FakeEvents] = []
        self.start_failure: StartFailed | None = None
        self.die_while_starting = 0
        self.started = 0
        self.reset_delay = 0.0  # given to every sandbox started from now on
        self.removed: list[str] = []
        self.untrusted_routes = False  # verify_route fails (a listener of another uid in the route's place)
        self.reaped: list[dict[str, str]] = []
        self._names = itertools.count(1)
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- the protocol

    def start(self, image: str, labels: Mapping[str, str], hardening: Hardening) -> FakeSandbox:
        if self.start_failure is not None:
            raise self.start_failure
        name = f"fake-{next(self._names)}"
        directory = self.root / name
        directory.mkdir()
        sandbox = FakeSandbox(name, image, dict(labels), directory)
        sandbox.service.reset_delay = self.reset_delay
        sandbox.server = grpc.server(ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_EnvServiceServicer_to_server(sandbox.service, sandbox.server)
        sandbox.server.add_insecure_port(f"unix:{directory}/env.sock")
        sandbox.server.start()
        sandbox.sessions = _SessionServer(str(directory / "env.session.sock"), _SessionHandler)
        sandbox.sessions.service = sandbox.service
        threading.Thread(target=sandbox.sessions.serve_forever, args=(0.05,), daemon=True).start()
        with self._lock:
            self.sandboxes[name] = sandbox
            self.started += 1
        return sandbox

    def wait_ready(self, sandbox: FakeSandbox, timeout: float) -> None:
        with self._lock:
            dies, self.die_while_starting = self.die_while_starting > 0, max(0, self.die_while_starting - 1)
        if dies:  # the engine reports the death while the readiness check still succeeds
            self._stop(sandbox)
            self._emit(SandboxEvent(sandbox.name, "die"))
            time.sleep(0.2)  # the pool's loop hears of it before this returns

    def address(self, sandbox: FakeSandbox) -> SandboxAddress:
        return SandboxAddress(f"unix:{sandbox.directory}/env.sock", str(sandbox.directory / "env.session.sock"),
                              str(sandbox.directory))

    def verify_route(self, sandbox: FakeSandbox, path: str) -> None:
        if self.untrusted_routes:
            raise RuntimeError(f"{Path(path).name} is served by uid 10002, not the server's uid 10001")
        if Path(path).parent != sandbox.directory:  # the fake's routes are names only: where they are is checked
            raise RuntimeError(f"{path} is not in {sandbox.name}'s directory")

    def died_before_serving(self, sandbox: FakeSandbox) -> StartFailed:
        return StartFailed(f"{sandbox.name} exited with status 3 before serving: boom",
                           StartFailure("exited", exit_code=3, logs="boom"))

    def remove(self, sandbox: FakeSandbox) -> bool:
        self._stop(sandbox)
        with self._lock:
            if self.sandboxes.pop(sandbox.name, None) is not None:
                self.removed.append(sandbox.name)
        shutil.rmtree(sandbox.directory, ignore_errors=True)
        return True

    def events(self, labels: Mapping[str, str]) -> FakeEvents:
        stream = FakeEvents()
        self.streams.append(stream)
        return stream

    def list_running(self, labels: Mapping[str, str]) -> set[str]:
        return {s.name for s in self._carrying(labels) if s.alive}

    def reap(self, labels: Mapping[str, str]) -> int:
        self.reaped.append(dict(labels))
        doomed = self._carrying(labels)
        for sandbox in doomed:
            self.remove(sandbox)
        return len(doomed)

    def reap_orphans(self) -> int:
        return 0

    # ---------------------------------------------------------------- what a test does to it

    def kill(self, name: str, kind: str = "die", announce: bool = True) -> None:
        """The sandbox dies, and (unless told not to yet) the engine says so."""
        self._stop(self.sandboxes[name])
        if announce:
            self.announce(name, kind)

    def announce(self, name: str, kind: str = "die") -> None:
        self._emit(SandboxEvent(name, "oom" if kind == "oom" else "die"))

    def _carrying(self, labels: Mapping[str, str]) -> list[FakeSandbox]:
        with self._lock:
            return [s for s in self.sandboxes.values() if labels.items() <= s.labels.items()]

    def _emit(self, event: SandboxEvent) -> None:
        for stream in self.streams:
            stream.queue.put(event)

    @staticmethod
    def _stop(sandbox: FakeSandbox) -> None:
        if not sandbox.alive:
            return
        sandbox.alive = False
        sandbox.service.stopped.set()
        sandbox.server.stop(0)  # calls in flight fail, as when a container dies
        sandbox.service.release_calls.set()
        sandbox.sessions.shutdown()
        sandbox.sessions.server_close()
        for path in (sandbox.directory / "env.sock", sandbox.directory / "env.session.sock"):
            path.unlink(missing_ok=True)
