"""The EnvService gRPC server: serves one environment, one episode at a time.

The server process is trusted: it never imports or executes environment code.
That happens in worker processes forked from a zygote (see supervisor.py).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import secrets
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from envscaler.protocol import framing
from envscaler.protocol.addresses import NO_REUSEPORT, bind_failure, ensure_free, grpc_address, session_socket_path
from envscaler.protocol.auth import TokenInterceptor
from envscaler.protocol.deadlines import Deadline, Margin
from envscaler.protocol.framing import MAX_FRAME
from envscaler.protocol.services import service_handler
from envscaler.protocol.sessions import (
    SESSION_METHODS,
    RequestError,
    internal_error,
    session_error,
    session_kind,
    sessions_full,
)
from envscaler.runtime import confine
from envscaler.runtime.calls import call_arguments, parse_json
from envscaler.runtime.confine import Isolation
from envscaler.runtime.messages import IN_BAND_STATE_ERRORS, WorkerKind
from envscaler.runtime.trusted import wire
from envscaler.runtime.trusted.served import ServedCheck, ServedEnv, ServedScenario, for_reset, scenario_checks
from envscaler.runtime.trusted.session_socket import SessionSocket
from envscaler.runtime.trusted.supervisor import EpisodeWorker, WorkerError, WorkerSettings, Zygote
from envscaler.v1 import env_pb2 as pb
from envscaler.v1 import env_pb2_grpc as pb_grpc
from envscaler.v1 import worker_pb2 as wpb

SERVICE_NAME = "envscaler.v1.EnvService"
MAX_SESSIONS = 4  # open Session streams; each holds a server thread


@dataclass(frozen=True)
class ServerConfig:
    call_timeout: float = 10.0
    reset_timeout: float = 10.0
    observation: str = "repr"
    max_result_bytes: int = 1 << 20
    max_argument_bytes: int = 1 << 20
    max_state_bytes: int = 48 << 20  # Reset's and GetState's state; under the pool's 64 MiB message cap
    memory_bytes: int = 0
    max_workers: int = 8
    # In a sandbox container (the image sets ENVSCALER_SANDBOX_SWEEP=1): clean the namespace between leases.
    sweep: bool = field(default_factory=lambda: os.environ.get("ENVSCALER_SANDBOX_SWEEP") == "1")
    # Checks sent by a client (EvaluateRequest.checks): code from outside the scenario. A pool turns them off.
    allow_client_checks: bool = True
    # gRPC server reflection (host-side `serve` only: the runtime image does not ship grpcio-reflection).
    reflection: bool = False
    # Who may call over TCP (envscaler/protocol/auth.py): a bearer token ('' : none) and TLS (None: plaintext).
    token: str = ""
    credentials: grpc.ServerCredentials | None = None


GET_STATE = wpb.WorkerRequest(state=wpb.WorkerGetState())
_CHECK_OUTCOMES = {"PASS": pb.PASS, "FAIL": pb.FAIL, "ERROR": pb.ERROR}


def _tool_error(kind: WorkerKind, message: str, broken: bool = False,
                started: float | None = None) -> pb.CallToolResponse:
    return pb.CallToolResponse(
        observation=f"Error: {message}",
        error=pb.ToolError(kind=kind, message=message),
        episode_broken=broken,
        duration_us=int((time.perf_counter() - started) * 1e6) if started else 0,
    )


def send_within(conn: socket.socket, data: bytes, seconds: float) -> None:
    """Send under a send deadline only (the connection's reads keep theirs: it may be handed over)."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, framing.timeval(seconds))
    try:
        framing.send(conn, data)
    finally:
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, framing.timeval(0))


@dataclass(frozen=True)
class MessageContext:
    """A stream message's own deadline, reported as a unary RPC's context reports its deadline."""

    deadline: Deadline
    route: SessionSocket | None = None  # the lease route the message came by, if any

    def time_remaining(self) -> float | None:
        return self.deadline.remaining()


NO_DEADLINE = MessageContext(Deadline.none())


class EnvServicer(pb_grpc.EnvServiceServicer):
    def __init__(self, spec: ServedEnv, scenarios: Mapping[str, ServedScenario], config: ServerConfig,
                 sandbox_uid: int | None = None) -> None:
        self.spec = spec
        self.scenarios = scenarios
        self.config = config
        self.tools = spec.tools
        self.tool_set = frozenset(t["function"]["name"] for t in self.tools)
        # The uid-wide sweeps are a container's only: on a host (`serve` as root) the sandbox uid is not ours alone.
        sandbox = ("split" if sandbox_uid is not None else "container") if config.sweep else ""
        self.zygote = Zygote(WorkerSettings(
            env_id=spec.env_id, code=spec.env_class_code, class_name=spec.env_class_name,
            tools=tuple(sorted(self.tool_set)), observation=config.observation,
            max_result_bytes=config.max_result_bytes, memory_bytes=config.memory_bytes, sandbox=sandbox,
            max_state_bytes=config.max_state_bytes,
        ), sandbox_uid)
        self.isolation = Isolation(server_uid=os.getuid(), sandbox_uid=self.zygote.uid,
                                   landlock_abi=confine.landlock_abi(), server_non_dumpable=not confine.is_dumpable())
        self.lock = threading.Lock()
        self.sessions = threading.BoundedSemaphore(MAX_SESSIONS)
        self.socket_dir = ""  # where routes go, when the server listens on a Unix socket
        self.route: SessionSocket | None = None
        self.dirty = False  # a worker broke since the last EndEpisode
        # An EndEpisode is under way: what fails now was cut short by the release itself and says nothing of the
        # sandbox (whose teardown is verified); set without the lock, since the release does not wait for it.
        self.ending = False
        self.resets = 0  # Resets since the last EndEpisode (this lease's)
        self.episode: EpisodeWorker | None = None
        self.episode_id = ""
        self.scenario_id = ""
        self.describe_response = pb.DescribeResponse(
            env_id=spec.env_id, env_class_name=spec.env_class_name, spec_hash=spec.spec_hash,
            environment_summary=spec.environment_summary,
            environment_introduction=spec.environment_introduction,
            constraints_rules=spec.constraints_rules,
            tools=[pb.Tool(name=t["function"]["name"], description=t["function"].get("description", ""),
                           parameters_json=json.dumps(t["function"].get("parameters", {"type": "object"}),
                                                      sort_keys=True))
                   for t in self.tools],
            scenario_ids=list(scenarios), observation_format=config.observation,
            isolation=pb.Isolation(server_uid=self.isolation.server_uid, sandbox_uid=self.isolation.sandbox_uid,
                                   landlock_abi=self.isolation.landlock_abi,
                                   server_non_dumpable=self.isolation.server_non_dumpable,
                                   client_checks=config.allow_client_checks),
            tool_schemas=spec.tool_schemas,
        )

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _caller(context: grpc.ServicerContext) -> Deadline:
        """The caller's deadline, less the margin that gets our answer to it in time."""
        return Deadline.after(context.time_remaining()).shrink(Margin.ANSWER_FIRST)

    def _timeout(self, context: grpc.ServicerContext, requested_ms: int, default: float) -> float:
        return self._caller(context).bound(requested_ms / 1000 if requested_ms else default)

    @staticmethod
    def _route_open(context: Any) -> None:
        """Under the lock: a message that came by a lease's route acts only while that lease lasts."""
        route = getattr(context, "route", None)
        if route is not None and route.closed:
            raise RequestError(grpc.StatusCode.PERMISSION_DENIED, "this lease's route is closed: the lease is over")

    def _current(self, context: grpc.ServicerContext | MessageContext, episode_id: str) -> EpisodeWorker:
        self._route_open(context)
        if self.episode is None:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION, "no episode: call Reset first")
        if episode_id and episode_id != self.episode_id:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION,
                          f"episode {episode_id!r} is over; the current episode is {self.episode_id!r}")
        self.episode.check_channel()
        if self.episode.broken:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION, self.episode.broken)
        return self.episode

    def _sandbox_fault(self, exc: WorkerError, timeout: float, own: float | None = None) -> bool:
        """Whether a broken episode says something about the sandbox (it is replaced on release): not when the worker
        was killed at a deadline the caller chose shorter than the server's own: that call fails for that caller
        alone, and a 1 ms deadline cannot make a pool destroy a healthy container. Nor a request the release cut
        short (see EndEpisode)."""
        if self.ending:
            return False
        if exc.kind != "DEADLINE_EXCEEDED":
            return True
        return timeout >= (self.config.call_timeout if own is None else own) - Margin.ANSWER_FIRST.value

    def _end_episode(self) -> None:
        if self.episode is not None:
            self.episode.close()
            self.episode = None
            if self.config.sweep:
                self.zygote.sweep()

    # ------------------------------------------------------------ RPCs

    def Describe(self, request: pb.DescribeRequest, context: grpc.ServicerContext) -> pb.DescribeResponse:
        return self.describe_response

    def Reset(self, request: pb.ResetRequest, context: grpc.ServicerContext) -> pb.ResetResponse:
        target = request.WhichOneof("target")
        scenario_id, task = "", ""
        init_config: dict[str, Any] | bytes = {}  # a JSON object, or a bundle's JSON text passed on unparsed
        if target == "scenario_id":
            scenario = self._read_scenario(request.scenario_id)
            if scenario is None:
                known = ", ".join(list(self.scenarios)[:10]) or "none"
                raise RequestError(grpc.StatusCode.NOT_FOUND,
                              f"unknown scenario {request.scenario_id[:80]!r} for {self.spec.env_id} (known: {known})")
            scenario_id, task, init_config = scenario
        elif target == "init_config_json":
            try:
                init_config = parse_json(request.init_config_json, "init_config_json")
            except ValueError as exc:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
            if not isinstance(init_config, dict):
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                              f"init_config_json must be a JSON object, got {type(init_config).__name__}")
        timeout = self._timeout(context, 0, self.config.reset_timeout)
        with self.lock:
            self._route_open(context)
            self._end_episode()
            try:
                worker, first = self.zygote.spawn(init_config, request.seed, timeout)
            except WorkerError as exc:
                code = grpc.StatusCode.DEADLINE_EXCEEDED if exc.kind == "DEADLINE_EXCEEDED" \
                    else grpc.StatusCode.FAILED_PRECONDITION
                raise RequestError(code, exc.message) from None
            self.episode, self.episode_id, self.scenario_id = worker, uuid.uuid4().hex[:16], scenario_id
            self.resets += 1
            if self.resets > 1:  # a lease that resets again will likely again: its next worker is taken ahead
                self.zygote.want_refill()
            if self.zygote.wants_next():  # a lease has begun: the next lease's zygote interpreter starts meanwhile
                threading.Thread(target=self.zygote.prestart, daemon=True, name="prestart").start()
            response = pb.ResetResponse(episode_id=self.episode_id, scenario_id=scenario_id, task=task,
                                        state_json=first.state_json, state_sha256=first.sha256)
            if first.HasField("state_error"):  # the episode runs; only its state has no JSON
                response.state_error.CopyFrom(wire.to_pb(first.state_error))
            return response

    def CallTool(self, request: pb.CallToolRequest, context: grpc.ServicerContext) -> pb.CallToolResponse:
        started = time.perf_counter()
        name = request.name
        arguments = call_arguments(name, request.arguments_json, self.tool_set, self.config.max_argument_bytes)
        if isinstance(arguments, tuple):
            return _tool_error(*arguments, started=started)
        timeout = self._timeout(context, request.timeout_ms, self.config.call_timeout)
        with self.lock:
            worker = self._current(context, request.episode_id)
            try:
                reply = worker.request(wpb.WorkerRequest(call=wpb.WorkerCall(
                    name=name, arguments_json=json.dumps(arguments).encode())), timeout,
                    f"tool {name!r}", ("result",))
            except WorkerError as exc:
                self.dirty |= self._sandbox_fault(exc, timeout)
                return _tool_error(exc.kind, exc.message, broken=True, started=started)
        if reply.HasField("failure"):
            return _tool_error(*wire.failure_of(reply.failure), started=started)
        return pb.CallToolResponse(result_json=reply.result.result_json, observation=reply.result.observation,
                                   duration_us=int((time.perf_counter() - started) * 1e6))

    def GetState(self, request: pb.GetStateRequest, context: grpc.ServicerContext) -> pb.GetStateResponse:
        timeout = self._timeout(context, 0, self.config.call_timeout)
        with self.lock:
            worker = self._current(context, request.episode_id)
            try:
                reply = worker.request(GET_STATE, timeout, "GetState", ("state",))
            except WorkerError as exc:
                self.dirty |= self._sandbox_fault(exc, timeout)
                raise RequestError(grpc.StatusCode.ABORTED, exc.message) from None
        if reply.HasField("failure"):
            if wire.failure_of(reply.failure)[0] in IN_BAND_STATE_ERRORS:
                return pb.GetStateResponse(error=wire.to_pb(reply.failure))
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION, reply.failure.message)
        return pb.GetStateResponse(state_json=reply.state.state_json, sha256=reply.state.sha256)

    def Evaluate(self, request: pb.EvaluateRequest, context: grpc.ServicerContext) -> pb.EvaluateResponse:
        if request.checks:
            if not self.config.allow_client_checks:
                raise RequestError(grpc.StatusCode.PERMISSION_DENIED,
                                   "checks sent by a client are off on this server (a pool turns them on with "
                                   "--allow-client-checks); evaluate the scenario's own checks instead")
            scenario_id = ""
            checks = [ServedCheck(check_item=c.check_item, check_func=c.check_func or " ") for c in request.checks]
        else:
            scenario_id, checks = self._scenario_checks(request, context)
        if not checks:
            with self.lock:
                self._current(context, request.episode_id)
            return pb.EvaluateResponse(scenario_id=scenario_id, message=f"scenario {scenario_id!r} has no check "
                                                                        "functions; there is nothing to reward")
        check_timeout = self._timeout(context, request.timeout_ms, self.config.call_timeout)
        own_total = check_timeout * len(checks) + Margin.EVALUATE_SLACK.value
        total_timeout = self._caller(context).bound(own_total)
        with self.lock:
            worker = self._current(context, request.episode_id)
            try:
                results = worker.evaluate([c.check_func for c in checks], check_timeout, total_timeout)
            except WorkerError as exc:
                self.dirty |= self._sandbox_fault(exc, total_timeout, own_total)
                raise RequestError(grpc.StatusCode.ABORTED, exc.message) from None
        response = pb.EvaluateResponse(scenario_id=scenario_id, total=len(checks))
        for i, (check, result) in enumerate(zip(checks, results, strict=True)):
            outcome = _CHECK_OUTCOMES.get(str(result.get("outcome")), pb.ERROR)
            response.checks.append(pb.CheckResult(index=i, check_item=check.check_item, outcome=outcome,
                                                  message=str(result.get("message", ""))))
            response.passed += outcome == pb.PASS
        response.reward = round(response.passed / response.total, 4)
        return response

    def EndEpisode(self, request: pb.EndEpisodeRequest, context: grpc.ServicerContext) -> pb.EndEpisodeResponse:
        """The end of a lease: nothing of it may reach the next (see Zygote.renew). It waits for no request of the
        lease still in flight (a lessee's call on its direct route, an Evaluate, a probe: each may hold the lock for
        as long as its own deadline): the route closes, and in a sandbox every process of the lease ends now, so
        the release takes the teardown's time, whatever deadline a lessee chose. What that cuts short is not the
        sandbox's fault."""
        self.ending = True
        try:
            route = self.route
            if route is not None:
                route.close()  # no request of the lease starts any more
            self.zygote.end_now()
            with self.lock:
                return self._end_lease()
        finally:
            self.ending = False

    def _end_lease(self) -> pb.EndEpisodeResponse:
        if self.episode is not None:
            self.episode.close()
            self.episode = None
        self.episode_id = self.scenario_id = ""
        self.resets = 0
        dirty, self.dirty = self.dirty, False
        try:
            self.zygote.renew()
        except WorkerError as exc:  # no clean zygote for the next lease: this sandbox is done
            raise RequestError(grpc.StatusCode.UNAVAILABLE, f"the sandbox cannot serve another lease: "
                                                            f"{exc.message}") from None
        route = self._next_route()
        if not self.zygote.alive():
            try:
                self.zygote.start()
            except WorkerError as exc:
                raise RequestError(grpc.StatusCode.UNAVAILABLE, exc.message) from None
        return pb.EndEpisodeResponse(dirty=dirty, route=route)

    def EpisodeChannel(self, request: pb.EpisodeChannelRequest, context: Any) -> pb.EpisodeChannelResponse:
        """A caller saying its call on the channel failed (a new channel is open_channel's, on a session socket)."""
        if not request.failed:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION, "an episode channel is a session socket's "
                                                                    "connection handed to the worker: a Session "
                                                                    "stream cannot be handed over")
        if request.failed not in (pb.DEADLINE_EXCEEDED, pb.PROTOCOL_ERROR):
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "a call on an episode channel fails as "
                                                                 "DEADLINE_EXCEEDED or PROTOCOL_ERROR only")
        with self.lock:
            worker = self._current(context, request.episode_id)
            if worker.watch is None:
                raise RequestError(grpc.StatusCode.FAILED_PRECONDITION, "this episode has no channel")
            seconds = request.overran_ms / 1000
            if request.failed == pb.DEADLINE_EXCEEDED:
                # A caller's own shorter deadline ends its episode and judges nothing. Past the server's own, the
                # caller's word alone cannot retire the sandbox: the server's clock and the worker decide. The
                # worker answers a ping between two calls, so it is stuck only if it does not answer by the server's
                # own deadline for the call it runs, counted from that call's arrival on the channel (seen by the
                # server: ChannelWatch.time_left). A busy honest worker ends its call, and answers, by then.
                own = self.config.call_timeout
                claimed = seconds >= own - Margin.ANSWER_FIRST.value
                stuck = claimed and worker.stuck(worker.watch.time_left(own) + Margin.HOP.value)
                exc = worker.channel_failed("DEADLINE_EXCEEDED", seconds)
                self.dirty |= stuck and self._sandbox_fault(exc, own)
            else:
                worker.channel_failed("PROTOCOL_ERROR", seconds)
                # The pool's word retires the sandbox; a lessee's alone (on its route) cannot.
                self.dirty |= getattr(context, "route", None) is None
        return pb.EpisodeChannelResponse(episode_id=self.episode_id)

    def open_channel(self, request: pb.EpisodeChannelRequest, conn: socket.socket,
                     route: SessionSocket | None) -> bool:
        """EpisodeChannelRequest on a session socket: answer it, then hand `conn` to the episode's worker. True when
        `conn` is no longer the session's (handed over, or closed after a failed hand-over)."""
        with self.lock:
            try:
                worker = self._current(MessageContext(Deadline.none(), route), request.episode_id)
                if worker.watch is not None:
                    raise RequestError(grpc.StatusCode.ALREADY_EXISTS, "this episode already has its channel")
            except RequestError as exc:
                try:  # under the lock, so under a send deadline too
                    send_within(conn, framing.frame(session_error(exc.code, exc.message)), Margin.SETTLE.value)
                except framing.FrameError:
                    conn.close()
                    return True
                return False
            answer = pb.EpisodeChannelResponse(episode_id=self.episode_id,
                                               call_timeout_ms=int(self.config.call_timeout * 1000),
                                               max_frame_bytes=min(MAX_FRAME, 4 * self.config.max_result_bytes
                                                                   + (64 << 10)))
            # Answered before the worker holds the connection: nothing it writes can come first. Under a send
            # deadline: a caller that does not read cannot hold the lock.
            try:
                send_within(conn, framing.frame(pb.SessionResponse(episode_channel=answer)), Margin.SETTLE.value)
            except framing.FrameError:
                conn.close()
                return True
            try:
                worker.attach(conn, self.episode_id, self.config.max_argument_bytes,
                              lambda: self._channel_closed(worker), self.config.call_timeout)
            except WorkerError:  # the worker failed its hand-over: the caller's first call finds out why
                self.dirty = True
            return True

    def _channel_closed(self, worker: EpisodeWorker) -> None:
        with self.lock:
            if self.episode is worker and not worker.broken and not worker.closed:
                worker.hang_up()

    def Session(self, requests: Iterator[pb.SessionRequest | RequestError],
                context: grpc.ServicerContext) -> Iterator[pb.SessionResponse]:
        if not self.sessions.acquire(blocking=False):
            raise RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, sessions_full(self.max_sessions))
        try:
            for request in requests:
                yield self.session_step(request, context)
        finally:
            self.sessions.release()

    max_sessions = MAX_SESSIONS

    def session_step(self, request: pb.SessionRequest | RequestError, context: Any,
                     route: SessionSocket | None = None) -> pb.SessionResponse:
        """One message of a Session stream or session socket; `context` None on a socket."""
        try:
            kind = session_kind(request)
            assert not isinstance(request, RequestError)  # session_kind raised it
            if request.deadline_ms:
                context = MessageContext(Deadline.from_ms(request.deadline_ms), route)
            elif context is None:
                context = MessageContext(Deadline.none(), route) if route is not None else NO_DEADLINE
            reply = getattr(self, SESSION_METHODS[kind])(getattr(request, kind), context)
            return pb.SessionResponse(**{kind: reply})
        except RequestError as exc:
            return session_error(exc.code, exc.message)
        except Exception as exc:  # never a traceback, never a dead session: this request alone fails
            return session_error(grpc.StatusCode.INTERNAL, internal_error(exc))

    def _scenario_checks(self, request: pb.EvaluateRequest,
                         context: grpc.ServicerContext) -> tuple[str, list[ServedCheck]]:
        scenario_id = request.scenario_id or self.scenario_id
        if not scenario_id:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                          "the episode was reset to an explicit init_config: name a scenario_id to evaluate")
        try:
            checks = scenario_checks(self.scenarios, scenario_id)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RequestError(grpc.StatusCode.INTERNAL, f"cannot read the checks of scenario {scenario_id[:80]!r} "
                                                         f"from the bundle: {exc}") from None
        if checks is None:
            raise RequestError(grpc.StatusCode.NOT_FOUND,
                               f"unknown scenario {scenario_id[:80]!r} for {self.spec.env_id}")
        return scenario_id, checks

    def _read_scenario(self, scenario_id: str) -> tuple[str, str, Any] | None:
        """A scenario's id, task and init_config, read now (a bundle store's from disk); None when unknown."""
        try:
            return for_reset(self.scenarios, scenario_id)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RequestError(grpc.StatusCode.INTERNAL, f"cannot read scenario {scenario_id[:80]!r} "
                                                         f"from the bundle: {exc}") from None

    def _next_route(self) -> str:
        """Close the ending lease's route (listener and connections) and open the next lease's, under a name no one
        can guess."""
        if self.route is not None:
            self.route.close()
            self.route = None
        if not self.socket_dir:
            return ""
        try:
            self.route = SessionSocket(self, os.path.join(self.socket_dir, f"route-{secrets.token_hex(16)}.sock"),
                                       MAX_FRAME, route=True).start()
        except OSError:  # a directory sealed to root (no privilege split): no direct routes, the pool's route only
            return ""
        if self.config.sweep:
            with contextlib.suppress(OSError):
                os.chmod(self.route.path, 0o666)  # its random name is the fence: the directory is not listable
        return os.path.basename(self.route.path)

    def close(self) -> None:
        with self.lock:
            self._end_episode()
            if self.route is not None:
                self.route.close()
            self.zygote.close()


@dataclass
class RunningServer:
    server: grpc.Server
    servicer: EnvServicer
    address: str
    health: health.HealthServicer
    load_error: str = ""
    session_socket: SessionSocket | None = None

    def stop(self, grace: float = 0.5) -> None:
        self.health.enter_graceful_shutdown()
        if self.session_socket is not None:
            self.session_socket.close()
        self.server.stop(grace).wait()
        self.servicer.close()
        if self.address.startswith("unix:"):
            with contextlib.suppress(OSError):
                os.unlink(self.address[5:])


def start_server(spec: ServedEnv, scenarios: Mapping[str, ServedScenario], listen: str,
                 config: ServerConfig | None = None, sandbox_uid: int | None = None) -> RunningServer:
    """Start serving; the zygote loads the module first, so health says SERVING only when it did."""
    config = config or ServerConfig()
    address = grpc_address(listen)
    ensure_free(address)  # before the stale socket's unlink below: a live server's socket is never taken over
    if address.startswith("unix:"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address[5:])
    servicer = EnvServicer(spec, scenarios, config, sandbox_uid)
    message_cap = max(4 << 20, 2 * config.max_argument_bytes, 5 * config.max_result_bytes,
                      config.max_state_bytes + (1 << 20))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.max_workers),
        options=[("grpc.max_receive_message_length", message_cap), ("grpc.max_send_message_length", message_cap),
                 NO_REUSEPORT],
        interceptors=[TokenInterceptor(config.token)] if config.token else None,
    )
    server.add_generic_rpc_handlers([service_handler(pb.DESCRIPTOR.services_by_name["EnvService"], servicer, False)])
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if config.reflection:
        from envscaler.protocol.reflection import enable_reflection

        enable_reflection(server, SERVICE_NAME)
    try:
        bound = server.add_secure_port(address, config.credentials) if config.credentials is not None \
            else server.add_insecure_port(address)
    except RuntimeError as exc:  # grpc's "Failed to bind": taken since ensure_free looked, or not bindable
        raise bind_failure(address, exc) from None
    if not address.startswith("unix:") and bound == 0:
        raise bind_failure(address, "no port bound")
    load_error = ""
    try:
        servicer.zygote.start()
        status = health_pb2.HealthCheckResponse.SERVING
    except WorkerError as exc:
        load_error, status = exc.message, health_pb2.HealthCheckResponse.NOT_SERVING
    for service in ("", SERVICE_NAME):
        health_servicer.set(service, status)
    session_socket = None
    if address.startswith("unix:"):
        # Listening before gRPC answers: whoever sees SERVING finds both sockets (and may seal their directory).
        # The same frame cap as the pool's, so a frame the pool passes on is never one the server cuts off.
        session_socket = SessionSocket(servicer, session_socket_path(address), MAX_FRAME).start()
        servicer.socket_dir = os.path.dirname(address[5:])
        if config.sweep:
            # In a sandbox the directory may be traversed by anyone (a lessee's route: envscaler/containers/launch.py)
            # and is listed by none; the stable sockets are the pool's: the server's uid and group root only.
            for path in (address[5:], session_socket.path):
                with contextlib.suppress(OSError):
                    os.chmod(path, 0o660)
    server.start()
    if not address.startswith("unix:"):
        host = address.rsplit(":", 1)[0]
        address = f"{host}:{bound}"
    return RunningServer(server, servicer, address, health_servicer, load_error, session_socket)


@contextlib.contextmanager
def serving(spec: ServedEnv, scenarios: Mapping[str, ServedScenario], listen: str,
            config: ServerConfig | None = None) -> Iterator[RunningServer]:
    running = start_server(spec, scenarios, listen, config)
    try:
        yield running
    finally:
        running.stop(grace=0)


def serve_forever(spec: ServedEnv, scenarios: Mapping[str, ServedScenario], listen: str, config: ServerConfig,
                  sandbox_uid: int | None = None, prog: str = "serve_bundle") -> int:
    """Run until SIGTERM or SIGINT; stop gracefully within a second."""
    running = start_server(spec, scenarios, listen, config, sandbox_uid)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if running.load_error:
        print(f"{prog}: {spec.env_id}: {running.load_error}; health reports NOT_SERVING",
              flush=True)
    print(f"serving {spec.env_id} ({len(running.servicer.tools)} tools) on {running.address}", flush=True)
    gc.freeze()  # what start-up made lives as long as the server: keep the collector from walking it on every pass
    stop.wait()
    running.stop(grace=0.5)
    return 0
