"""The untrusted side: a zygote that loads the environment module once and forks
one fresh worker per episode. Run as `python -m envscaler.runtime.sandbox.worker FD`.

Everything here runs environment code, so it imports only the standard library
and the codec. The trusted server talks to the zygote over FD and to each
episode worker over a socket the zygote hands it (with a pidfd, so the server
can kill the worker without a pid-reuse race).
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import functools
import gc
import inspect
import json
import os
import pickle
import random
import resource
import select
import signal
import socket
import sys
import time
import types
from typing import Any

from envscaler.protocol import framing
from envscaler.runtime import channel, confine, procfs
from envscaler.runtime.messages import KIND_NUMBERS, WorkerKind, failure
from envscaler.runtime.sandbox import codec, worker_wire
from envscaler.runtime.sandbox.tool_channel import ToolChannel
from envscaler.runtime.sandbox.wipe import clean_sandbox, empty_directory, remove_ipc

MAX_REQUEST_BYTES = 64 << 20  # what the trusted server sends; it enforces its own caps first
READY_TIMEOUT = 5.0  # for the next episode's worker to prove it is ready


# Each tool's name, with its function and its signature as bound to an instance, worked out once
# in the zygote: inspect.signature per call was a fifth of a worker's time on a small tool.
Tools = dict[str, tuple[Any, inspect.Signature] | None]


def tool_signatures(cls: type, names: list[str]) -> Tools:
    tools: Tools = {}
    for name in names:
        tools[name] = None
        raw = inspect.getattr_static(cls, name, None)
        if isinstance(raw, types.FunctionType):
            try:
                signature = inspect.signature(raw)
            except (TypeError, ValueError):
                continue
            tools[name] = (raw, signature.replace(parameters=list(signature.parameters.values())[1:]))
    return tools


@functools.lru_cache(maxsize=1024)
def _keywords(signature: inspect.Signature) -> tuple[frozenset[str], frozenset[str], frozenset[str], bool] | None:
    """What a call by keywords alone must name, may name and may not name (positional-only: inspect refuses them
    even beside **kwargs); None when only inspect can say (a required positional-only parameter)."""
    allowed: set[str] = set()
    required: set[str] = set()
    positional: set[str] = set()
    var_keyword = False
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            var_keyword = True
        elif parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            allowed.add(parameter.name)
            if parameter.default is parameter.empty:
                required.add(parameter.name)
        elif parameter.kind is parameter.POSITIONAL_ONLY:
            if parameter.default is parameter.empty:
                return None
            positional.add(parameter.name)
    return frozenset(allowed), frozenset(required), frozenset(positional), var_keyword


def binds(signature: inspect.Signature, arguments: dict[str, Any]) -> bool:
    """True when `signature.bind(**arguments)` surely succeeds (checked by sets, not by inspect)."""
    try:
        shape = _keywords(signature)
    except TypeError:  # an unhashable default: no cache
        return False
    if shape is None:
        return False
    allowed, required, positional, var_keyword = shape
    names = arguments.keys()
    return required <= names and names.isdisjoint(positional) and (var_keyword or names <= allowed)


def _error(kind: WorkerKind, message: str) -> dict[str, Any]:
    return failure(kind, message)


def _describe_exception(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):  # name the limit and what raises it, not a bare MemoryError
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        within = f"its {limit >> 20} MiB address-space limit" if limit > 0 else "the memory it may use"
        return (f"MemoryError: the worker ran out of {within} (3/4 of the container's memory limit): "
                "raise --memory-mb")
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ---------------------------------------------------------------- episode worker


MAX_MESSAGE = 4000  # characters of an error message: a tool's exception text can be any size


def _clean(text: str) -> str:
    """Text that can travel: lone surrogates as JSON's \\uXXXX escapes (they have no UTF-8 form)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text


def _failure(kind: WorkerKind, message: str) -> dict[str, Any]:
    return _error(kind, _clean(message[:MAX_MESSAGE]))


def _described(exc: BaseException) -> str:
    """_describe_exception, even for an exception whose __str__ raises."""
    try:
        return _describe_exception(exc)
    except Exception:  # the exception's own __str__ is environment code
        return f"{type(exc).__name__} (its message cannot be shown: str() raised)"


def _attributes_of(instance: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(instance).items() if not (k.startswith("__") and k.endswith("__"))}


def _tolerant_copy(value: Any, memo: dict[int, Any], depth: int = 0) -> Any:
    """deepcopy, and where it raises, a copy of the containers around what cannot be copied (kept as is)."""
    try:
        return copy.deepcopy(value, memo)
    except Exception:
        if depth < 50 and type(value) is dict:
            return {k: _tolerant_copy(v, memo, depth + 1) for k, v in value.items()}
        if depth < 50 and type(value) is list:
            return [_tolerant_copy(v, memo, depth + 1) for v in value]
        return value


def snapshot(instance: Any) -> tuple[dict[str, Any], str]:
    """EnvScaler's state, deepcopy(vars(instance)) without dunder keys, and "" or why it is not a full copy:
    an attribute whose deepcopy raises is copied as far as possible and otherwise kept as is."""
    attributes = _attributes_of(instance)
    try:
        return copy.deepcopy(attributes), ""
    except Exception as exc:
        return _tolerant_copy(attributes, {}), f"deepcopy of the state raised {_described(exc)}"


def _pickled(attributes: dict[str, Any]) -> bytes | None:
    """The state pickled (its unpickling is an independent deep copy), or None when some value cannot be."""
    try:
        return pickle.dumps(attributes, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # a lock, a generator, a class pickle cannot find by name: deepcopy instead
        return None


def state_of(instance: Any) -> dict[str, Any]:
    """EnvScaler's state, deepcopy(vars(instance)) without dunder keys; never raises (see snapshot)."""
    return snapshot(instance)[0]


def instantiate(cls: type, init_config: dict[str, Any]) -> Any:
    """EnvScaler's way: cls(deepcopy(config)), falling back to cls(), then setattr of each key.
    `init_config` is the caller's own copy (decoded from its frame): its values become the attributes, so a
    large database is held once, not copied again."""
    try:
        instance = cls(copy.deepcopy(init_config))
    except TypeError:
        instance = cls()
    for key, value in init_config.items():
        setattr(instance, key, value)
    return instance


class Episode:
    def __init__(self, instance: Any, tools: Tools, settings: dict[str, Any]) -> None:
        self.instance = instance
        self.tools = tools
        self.observation = settings.get("observation", "repr")
        self.max_bytes = int(settings.get("max_result_bytes", 1 << 20))
        # Twice the result cap: escaped inside a frame it still fits the server's frame cap (4x).
        self.max_state_bytes = int(settings.get("max_state_bytes", 2 * self.max_bytes - 4096))
        # initial_state, kept pickled (a fraction of a large database's size) and rebuilt in each check's own
        # process; a state that cannot be pickled is deep-copied as before.
        self.initial_state: Any = _pickled(_attributes_of(instance))
        self.snapshot_error = ""
        if self.initial_state is None:
            self.initial_state, self.snapshot_error = snapshot(instance)
        self.pid = os.getpid()
        self.channel: socket.socket | None = None  # the episode channel's connection, once handed over

    def encode_state(self) -> dict[str, Any]:
        """The live state's canonical JSON (what its deep copy would encode to), or UNSERIALIZABLE_STATE;
        the episode goes on either way."""
        try:
            text = codec.dumps(_attributes_of(self.instance), max_bytes=self.max_state_bytes)
        except codec.EncodeError as exc:
            if exc.reason == "size":  # a state is not a tool result: name its own cap and what raises it
                return _failure("UNSERIALIZABLE_STATE", f"the state's canonical JSON is over the "
                                                        f"{self.max_state_bytes}-byte state cap (serve "
                                                        "--max-state-bytes raises it)")
            return _failure("UNSERIALIZABLE_STATE", f"the state has no canonical JSON: {exc}")
        except Exception as exc:
            return _failure("UNSERIALIZABLE_STATE", f"encoding the state raised {_described(exc)}")
        return {"ok": True, "state": text, "sha256": codec.sha256(text)}

    def reset_reply(self) -> dict[str, Any]:
        """Reset succeeds whatever the state: what went wrong with it is said in band."""
        reply = self.encode_state()
        problems = [] if reply["ok"] else [reply["message"]]
        if self.snapshot_error:
            problems.append(_clean(f"{self.snapshot_error[:MAX_MESSAGE]}; checks see initial_state with what "
                                   "could not be copied kept as it is"))
        if not reply["ok"]:
            reply = {"ok": True, "state": "", "sha256": ""}
        if problems:
            reply["state_error"] = {"kind": "UNSERIALIZABLE_STATE", "message": "; ".join(problems)}
        return reply

    def call(self, name: Any, arguments: Any) -> dict[str, Any]:
        if not isinstance(name, str) or name.startswith("_") or name not in self.tools:
            return _error("UNKNOWN_TOOL", f"unknown tool {name!r}; available: {', '.join(sorted(self.tools))}")
        try:
            method = getattr(self.instance, name, None)
        except Exception as exc:
            return _failure("TOOL_EXCEPTION", f"looking up tool {name!r} raised {_described(exc)}")
        if not callable(method):
            return _error("UNKNOWN_TOOL", f"tool {name!r} is not a method of the environment")
        if not isinstance(arguments, dict):
            return _error("INVALID_ARGUMENTS", f"arguments of {name!r} must be a JSON object, "
                                               f"got {type(arguments).__name__}")
        known = self.tools[name]
        try:
            signature = known[1] if known and getattr(method, "__func__", None) is known[0] \
                else inspect.signature(method)
            if not binds(signature, arguments):  # only a call that may not bind pays for inspect's word on it
                signature.bind(**arguments)
        except TypeError as exc:
            return _failure("INVALID_ARGUMENTS", f"invalid arguments for {name!r}: {exc}")
        except ValueError:
            pass  # no signature available (a builtin): let the call decide
        try:
            result = method(**arguments)
        except SystemExit:
            raise  # sys.exit() in a tool ends the worker with its status, reported as a crash
        except BaseException as exc:  # KeyboardInterrupt, GeneratorExit...: still the tool's failure
            return _failure("TOOL_EXCEPTION", f"tool {name!r} raised {_described(exc)}")
        return self.encode_result(name, result)

    def encode_result(self, name: str, result: Any) -> dict[str, Any]:
        try:
            text = codec.dumps(result, max_bytes=self.max_bytes)
        except codec.EncodeError as exc:
            if exc.reason == "size":
                return _error("RESULT_TOO_LARGE", f"result of {name!r} is over the {self.max_bytes}-byte cap "
                                                  "(its canonical JSON)")
            return _failure("UNSERIALIZABLE_RESULT", f"result of {name!r} cannot be encoded as JSON: {exc}")
        except Exception as exc:
            return _failure("UNSERIALIZABLE_RESULT", f"encoding the result of {name!r} raised {_described(exc)}")
        if self.observation == "json":
            observation = text
        else:
            try:
                observation = str(result)
                if not isinstance(observation, str):
                    raise TypeError(f"__str__ returned {type(observation).__name__}")
            except Exception as exc:
                return _failure("UNSERIALIZABLE_RESULT", f"str() of the result of {name!r} raised {_described(exc)}")
            observation = _clean(observation)
        # A character is at most 4 bytes of UTF-8: most results need no encoding just to be measured.
        longest = max(len(text), len(observation))
        size = longest if 4 * longest <= self.max_bytes else max(len(text.encode()), len(observation.encode()))
        if size > self.max_bytes:
            return _error("RESULT_TOO_LARGE", f"result of {name!r} is {size} bytes, over the "
                                              f"{self.max_bytes}-byte cap")
        return {"ok": True, "result": text, "observation": observation}

    def evaluate(self, sock: socket.socket, checks: list[Any]) -> dict[str, Any]:
        """Each check in its own forked process, in a Landlock domain of its own (no signal or ptrace outside it, no
        file writes), writing its result to its own pipe, whose read end goes to the trusted server: the server
        reads it under the check's deadline, then tells us to end the check's process group and go on."""
        # Each check runs in a fork of this worker: the live attributes are already its own copy of the final
        # state (deepcopy's isolation without a second copy of a large database).
        final_state = _attributes_of(self.instance)
        for source in checks:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                # A check answers nothing but its result, to the server: every other descriptor goes (the control
                # socket, the episode channel and any copy a tool made of either).
                os.closerange(3, write_fd)
                os.closerange(write_fd + 1, _descriptor_limit())
                run_check_process(source, final_state, self.initial_state, write_fd)
            os.close(write_fd)
            try:
                channel.send(sock, worker_wire.reply("check", pid=pid), fds=[read_fd])
            finally:
                os.close(read_fd)
            try:
                expect_request(channel.recv(sock, MAX_REQUEST_BYTES), "next")  # the server has its result
            finally:
                _end_group(pid)
        return {"ok": True}

    def handle(self, op: str, request: dict[str, Any]) -> dict[str, Any]:
        """One request's reply; whatever escapes (but sys.exit) is a WORKER_ERROR reply, never the worker's end."""
        try:
            if op == "call":
                try:
                    arguments = json.loads(request["arguments_json"] or b"{}")
                except (ValueError, RecursionError):
                    return _error("INVALID_ARGUMENTS", "the arguments are not JSON")
                return self.call(request["name"], arguments)
            if op == "state":
                return self.encode_state()
            # the server asks whether we are inside a call (envscaler/runtime/trusted/supervisor.py: stuck)
            if op == "ping":
                return {"ok": True}
        except SystemExit:
            raise
        except BaseException as exc:
            return _failure("WORKER_ERROR", f"{op} failed in the worker: {_described(exc)}")
        return _error("PROTOCOL_ERROR", f"a {op} request is not one an episode's worker answers")


def expect_request(body: bytes, kind: str) -> dict[str, Any]:
    """The trusted server's request of `kind`; anything else is the end of this channel (FrameError)."""
    try:
        found, fields = worker_wire.read_request(body)
    except worker_wire.WireError as exc:
        raise channel.FrameError("protocol", f"not a WorkerRequest: {exc}") from None
    if found != kind:
        raise channel.FrameError("protocol", f"a {found} request where {kind} was due")
    return fields


def encoded(reply: dict[str, Any]) -> bytes:
    """A reply of this module's (failure, state, result, or a bare ok) as its WorkerReply."""
    if not reply.get("ok"):
        return worker_wire.reply("failure", kind=KIND_NUMBERS[reply["kind"]], message=reply["message"])
    if "state" in reply:
        error = reply.get("state_error")
        return worker_wire.reply("state", state_json=reply["state"], sha256=reply["sha256"],
                                 state_error=None if error is None else
                                 {"kind": KIND_NUMBERS[error["kind"]], "message": error["message"]})
    if "result" in reply:
        return worker_wire.reply("result", result_json=reply["result"], observation=reply["observation"])
    return worker_wire.reply("done")


def _descriptor_limit() -> int:
    """Past every descriptor this process can hold (its limits were applied before any environment code ran)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(limit for limit in (soft, hard, 1 << 10) if limit != resource.RLIM_INFINITY)


def _end_group(pid: int) -> None:
    """End a check's process and whatever it forked (they lead their own group), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def check_outcome(source: Any, final_state: dict[str, Any], initial_state: dict[str, Any]) -> dict[str, Any]:
    """EnvScaler's check: exec the source, call check_func(final_state) with initial_state as a global."""
    namespace: dict[str, Any] = {"__builtins__": builtins, "__name__": "envscaler_check",
                                 "initial_state": initial_state}
    try:
        exec(compile(str(source), "<check_func>", "exec"), namespace)
        func = namespace.get("check_func")
        if not callable(func):
            return {"outcome": "ERROR", "message": "the source does not define check_func"}
        value = func(final_state)
    except Exception as exc:
        return {"outcome": "ERROR", "message": f"check_func raised {_describe_exception(exc)}"[:2000]}
    if not isinstance(value, bool):
        return {"outcome": "ERROR", "message": f"check_func returned {type(value).__name__}, not bool"}
    return {"outcome": "PASS" if value else "FAIL", "message": ""}


def run_check_process(source: Any, final_state: dict[str, Any], initial_state: dict[str, Any] | bytes,
                      write_fd: int) -> None:
    """A check's whole process (forked from the episode's worker): it sees its own copy of the state, cannot
    signal or ptrace the worker, the zygote or the server, and cannot write files; it answers once, then exits."""
    code = 0
    try:
        os.setpgid(0, 0)
        confine.landlock(deny_writes=True)
        me = os.getpid()
        try:  # rebuilt only for a check whose source names it: another copy of a large database costs memory
            initial = initial_state if not isinstance(initial_state, bytes) else \
                pickle.loads(initial_state) if "initial_state" in str(source) else {}
        except BaseException as exc:  # MemoryError above all: said, with the limit and the flag
            result = {"outcome": "ERROR", "message": f"rebuilding initial_state raised {_described(exc)}"}
        else:
            result = check_outcome(source, final_state, initial)
        if os.getpid() == me:  # a check that forked: only the check itself answers
            line = (json.dumps(result, ensure_ascii=True) + "\n").encode()
            os.write(write_fd, line)
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def warm_up(cls: type | None = None) -> None:
    """Run the hot paths once while waiting, so copy-on-write faults are paid before the reset, not during it; and
    touch (without running) the environment class's functions and their code, which the reset will."""
    sample = {"k": [1, 2.5, "x", None, {"n": True}]}
    codec.sha256(codec.dumps(copy.deepcopy(sample)))
    encoded({"ok": True, "result": json.dumps(sample), "observation": str(sample)})
    json.loads(json.dumps(sample))
    str(sample)
    if cls is not None:  # plain functions only: nothing of the environment's runs before its episode
        touched: list[object] = []
        for klass in cls.__mro__[:-1]:
            for value in vars(klass).values():
                function = value.__func__ if isinstance(value, staticmethod | classmethod) else value
                if isinstance(function, types.FunctionType):
                    touched += [function, function.__code__]
        del touched


def run_episode(sock: socket.socket, cls: type, tools: Tools, settings: dict[str, Any]) -> None:
    """The forked worker's whole life: wait for its reset, instantiate, answer requests until EOF."""
    # A SIGINT (from a tool's own thread or child; never the terminal: we lead our own group) would raise
    # KeyboardInterrupt wherever it lands, mid-frame included: ignored, it cannot end the worker unexplained.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        request = expect_request(channel.recv(sock, MAX_REQUEST_BYTES), "reset")
    except channel.FrameError:
        return
    seed = request["seed"]
    if seed:
        random.seed(seed)
    try:
        init_config = json.loads(request.pop("init_config_json") or b"{}")
        episode = Episode(instantiate(cls, init_config), tools, settings)
        reply = episode.reset_reply()
    except SystemExit:
        raise
    except BaseException as exc:
        reply = _failure("RESET_FAILED", f"the environment failed to instantiate: {_described(exc)}")
    if not _send(sock, reply) or not reply.get("ok"):
        return
    tool_channel: ToolChannel | None = None  # the episode channel, once the server hands one over

    def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return episode.handle("call", {"name": name, "arguments_json": json.dumps(arguments).encode()})

    waiting = select.poll()  # the control socket, and the episode channel once there is one
    waiting.register(sock, select.POLLIN)
    while True:
        # The control socket first, then one call on the channel: a ping is answered between two calls.
        if tool_channel is not None and all(fd != sock.fileno() for fd, _ in waiting.poll()):
            channel_fd = tool_channel.sock.fileno()
            if not tool_channel.serve(call, episode.tools):
                waiting.unregister(channel_fd)
                tool_channel = episode.channel = None  # the caller closed it: the server ends the episode
            continue
        try:
            body, fds = channel.recv_with_fds(sock, MAX_REQUEST_BYTES, 1, first_read=framing.FIRST_READ)
        except channel.FrameError:
            return
        try:
            op, message = worker_wire.read_request(body)
        except worker_wire.WireError as exc:
            op, message = "", {"problem": str(exc)}
        del body
        if op == "attach":
            if tool_channel is None and len(fds) == 1:
                tool_channel = ToolChannel(socket.socket(fileno=fds[0]), message["episode_id"],
                                           message["max_argument_bytes"] or 1 << 20)
                episode.channel = tool_channel.sock
                waiting.register(tool_channel.sock, select.POLLIN)
                reply = {"ok": True}
            else:
                for fd in fds:
                    os.close(fd)
                reply = _error("PROTOCOL_ERROR", "an episode channel is handed over once, with one descriptor")
            if not _send(sock, reply):
                return
            continue
        for fd in fds:  # only a hand-over carries a descriptor
            os.close(fd)
        if op == "evaluate":
            try:
                reply = episode.evaluate(sock, message["checks"])
            except channel.FrameError:
                return
            except Exception as exc:  # e.g. fork() refused: said, not an unexplained exit
                reply = _failure("WORKER_ERROR", f"evaluate failed in the worker: {_described(exc)}")
        elif op:
            reply = episode.handle(op, message)
        else:
            reply = _error("PROTOCOL_ERROR", f"not a WorkerRequest: {message['problem']}")
        if os.getpid() != episode.pid:  # a tool forked: only the worker itself may answer
            os._exit(0)
        if not _send(sock, reply):
            return


def _send(sock: socket.socket, reply: dict[str, Any]) -> bool:
    """Send a reply; one that cannot be framed goes as a WORKER_ERROR saying why. False: the channel is gone."""
    try:
        channel.send(sock, encoded(reply))
    except channel.FrameError:
        return False
    except Exception as exc:
        try:
            channel.send(sock, encoded(_failure("WORKER_ERROR", f"the worker's reply could not be sent: "
                                                                f"{_described(exc)}")))
        except channel.FrameError:
            return False
    return True


def apply_limits(limits: dict[str, int]) -> None:
    """Per-process limits; the container's cgroup is the real fence, these catch the obvious."""
    table = {"memory_bytes": resource.RLIMIT_AS, "file_bytes": resource.RLIMIT_FSIZE,
             "open_files": resource.RLIMIT_NOFILE}
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for key, which in table.items():
        value = int(limits.get(key, 0))
        if value > 0:
            _soft, hard = resource.getrlimit(which)
            cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (cap, cap))


def load_class(code: str, class_name: str, env_id: str) -> type:
    module = types.ModuleType("envscaler_env")
    module.__file__ = f"<env {env_id}>"
    sys.modules[module.__name__] = module  # dataclasses and typing look the module up
    exec(compile(code, f"<env {env_id}>", "exec"), module.__dict__)
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise LookupError(f"the code defines no class {class_name!r}")
    return cls


class Spare:
    """A worker forked ahead of time, waiting for its reset: Reset never waits for fork(). It enters a Landlock
    domain of its own first, so its episode cannot signal or ptrace the zygote, the next spare or the server."""

    def __init__(self, control: socket.socket, cls: type, tools: Tools, settings: dict[str, Any]) -> None:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ready_read, ready_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the episode worker
            code = 0
            try:
                control.close()
                parent_end.close()
                os.close(ready_read)
                os.setpgid(0, 0)
                confine.landlock()
                warm_up(cls)
                with contextlib.suppress(BrokenPipeError):  # handed over before anyone asked
                    os.write(ready_write, b"r")
                os.close(ready_write)
                run_episode(child_end, cls, tools, settings)
            except SystemExit as exc:  # sys.exit() inside a tool ends the worker with its status
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                code = 70
            finally:
                os._exit(code)
        child_end.close()
        os.close(ready_write)
        self.pid, self.sock, self.ready_fd = pid, parent_end, ready_read
        try:
            self.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):  # no pidfd (old kernel, some sandboxes): the server falls back to kill
            self.pidfd = -1

    def proven_ready(self, timeout: float) -> bool:
        """The worker said it is ready (set up and waiting for its reset), and it is not stopped."""
        if self.ready_fd >= 0:
            if not select.select([self.ready_fd], [], [], timeout)[0] or os.read(self.ready_fd, 1) != b"r":
                return False
            os.close(self.ready_fd)
            self.ready_fd = -1
        seen = procfs.status(self.pid)  # bytes: the worker names itself
        return seen is not None and seen.state in (b"S", b"R")

    def hand_over(self, control: socket.socket) -> None:
        fds = [self.sock.fileno()] + ([self.pidfd] if self.pidfd >= 0 else [])
        channel.send(control, worker_wire.reply("spawned", pid=self.pid, pidfd=self.pidfd >= 0), fds=fds)
        self.discard()

    def discard(self) -> None:
        self.sock.close()
        for fd in (self.pidfd, self.ready_fd):
            if fd >= 0:
                os.close(fd)
        self.pidfd = self.ready_fd = -1


def kill_others(keep: set[int], seconds: float = 2.0) -> str:
    """End every other process of our uid but `keep` (an episode's daemons, whatever /proc says of them: read as
    bytes, zombies included until reaped), and verify it; "" when none is left, else what is."""
    return procfs.end_pids(os.getuid(), frozenset(keep), time.monotonic() + seconds, reap_finished)


def clean_between_episodes(sandbox: str, keep: set[int]) -> str:
    """Nothing of one episode reaches the next: no process, no file in /tmp or /dev/shm, no System V IPC object.
    Returns "" or which processes it could not end (the server's teardown then ends them all)."""
    if sandbox not in ("container", "split"):
        return ""
    left = kill_others(keep)
    for path in ("/tmp", "/dev/shm", "/dev/mqueue"):
        empty_directory(path)
    remove_ipc()
    return left


def load_problems(control_fd: int) -> list[str]:
    """What module-level code left in the zygote that would outlive an episode; such a module is refused."""
    problems = []
    threads = len(os.listdir("/proc/self/task"))
    if threads > 1:
        problems.append(f"it started {threads - 1} thread(s) at import; module-level code must not leave threads "
                        "running (they would see every later episode)")
    try:
        if os.waitpid(-1, os.WNOHANG) == (0, 0):
            problems.append("it started a child process at import that is still running")
    except ChildProcessError:
        pass
    for entry in os.listdir("/proc/self/fd"):
        fd = int(entry)
        if fd in (0, 1, 2, control_fd):
            continue
        try:
            target = os.readlink(b"/proc/self/fd/%d" % fd).decode(errors="replace")  # bytes: any name
        except OSError:
            continue  # the descriptor listdir itself used
        problems.append(f"it keeps file descriptor {fd} open ({target}); module-level code must not hold files, "
                        "pipes or sockets that every episode would share")
    with open("/proc/self/maps", "rb") as maps:  # bytes: a mapped file's name is the module's choice
        for line in maps:
            fields = line.split()
            if len(fields) > 1 and fields[1][1:2] == b"w" and fields[1][3:4] == b"s":
                name = fields[-1].decode(errors="replace") if len(fields) > 5 else "anonymous"
                problems.append(f"it maps writable shared memory ({name}); every episode would share it")
                break
    return problems


# How children the zygote reaped in passing ended, for the server's later question (bounded: only the last few).
REAPED: dict[int, int] = {}


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def reap(pid: int) -> str:
    if pid in REAPED:
        return _describe_status(REAPED.pop(pid))
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return "already reaped"
    return _describe_status(status)


def reap_finished() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        REAPED[pid] = status
        while len(REAPED) > 64:
            REAPED.pop(next(iter(REAPED)))


def _say(control: socket.socket, reply: dict[str, Any]) -> None:
    channel.send(control, encoded(reply))


def serve(control: socket.socket, load: dict[str, Any]) -> None:
    """The zygote: `load` is the WorkerLoad it was started with; then spawn, reap, sweep and renew, until EOF."""
    sandbox = load["sandbox"]
    settings = {key: load[key] for key in ("observation", "max_result_bytes", "max_state_bytes") if load[key]}
    if sandbox:
        dirty = clean_sandbox()
        if dirty:
            _say(control, _error("LOAD_FAILED", f"the sandbox could not be cleaned for a new lease ({dirty}); "
                                                "it must be replaced"))
            return
    apply_limits(load["limits"] or {})
    try:
        cls = load_class(load["code"], load["class_name"], load["env_id"] or "env")
        problems = load_problems(control.fileno())
        if problems:
            raise RuntimeError("the module is refused: " + "; ".join(problems))
    except BaseException as exc:
        _say(control, _error("LOAD_FAILED", f"the environment module failed to load: {_describe_exception(exc)}"))
        return
    tools = tool_signatures(cls, list(load["tools"]))
    gc.freeze()  # keep the collector from writing to shared pages in every forked worker
    spare = Spare(control, cls, tools, settings)
    # Loaded, and the first episode's worker is ready: the lease can begin.
    _say(control, {"ok": True} if spare.proven_ready(READY_TIMEOUT)
         else _error("LOAD_FAILED", "the first worker did not become ready"))
    while True:
        try:
            body = channel.recv(control, MAX_REQUEST_BYTES)
        except channel.FrameError:
            return
        try:
            op, request = worker_wire.read_request(body)
        except worker_wire.WireError as exc:
            _say(control, _error("PROTOCOL_ERROR", f"not a WorkerRequest: {exc}"))
            continue
        if op == "spawn":
            spare.hand_over(control)
            reap_finished()
            spare = Spare(control, cls, tools, settings)
        elif op == "reap":
            channel.send(control, worker_wire.reply("reaped", status=reap(request["pid"])))
        elif op == "sweep":  # between two episodes of one lease; `keep`: the next episode's worker, taken ahead
            left = clean_between_episodes(sandbox, {1, os.getpid(), os.getppid(), spare.pid, *request["keep"]})
            reap_finished()
            _say(control, _error("WORKER_ERROR", left) if left else {"ok": True})
        elif op == "renew":
            # Between leases: the spare lived beside the lease that ends, so replace it, and answer only once the
            # new one is ready.
            with contextlib.suppress(OSError):
                os.killpg(spare.pid, signal.SIGKILL)
            spare.discard()
            left = clean_between_episodes(sandbox, {1, os.getpid(), os.getppid()})
            reap_finished()
            if left:
                _say(control, _error("WORKER_ERROR", left))
                return
            if len(os.listdir("/proc/self/task")) > 1:
                _say(control, _error("PROTOCOL_ERROR", "a thread appeared in the zygote"))
                return
            spare = Spare(control, cls, tools, settings)
            ready = spare.proven_ready(READY_TIMEOUT)
            _say(control, {"ok": True} if ready else _error("PROTOCOL_ERROR", "the next worker is not ready"))
        else:
            _say(control, _error("PROTOCOL_ERROR", f"a {op} request is not one the zygote answers"))


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    # When the container runs out of memory, the kernel kills environment code first (this process and every
    # worker and check forked from it), never the server: the episode fails and says so, the container lives.
    # Raised first, while this process's /proc files are still its own to write.
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as adj:
        adj.write("1000")
    # A server may start this interpreter (and its imports) ahead of time, while another lease's zygote still runs:
    # nothing below runs before the load message comes. Until then it keeps the server's uid, not the sandbox's, so
    # it is out of that lease's reach (another uid, non-dumpable, outside its Landlock domain) and out of the sweep
    # that ends that lease's processes.
    confine.set_non_dumpable()
    try:
        load = expect_request(channel.recv(control, MAX_REQUEST_BYTES), "load")
    except channel.FrameError:
        return
    if len(sys.argv) > 3 and sys.argv[2] == "--as":  # started by a server that holds CAP_SETUID: drop it all first
        confine.drop_to(int(sys.argv[3]))
    # No other process of this uid may ptrace the zygote or read its memory (forked workers inherit this), and
    # module-level code already runs in a Landlock domain: it cannot signal or ptrace the server.
    confine.set_non_dumpable()
    confine.landlock()
    # Environment code may print; keep its output off the server's streams.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    serve(control, load)


if __name__ == "__main__":
    main()
