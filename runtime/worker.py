"""The untrusted side: a zygote that loads the environment module once and forks
one fresh worker per episode. Run as `python -m envscaler.runtime.worker FD`.

Everything here runs environment code, so it imports only the standard library
and the codec. The trusted server talks to the zygote over FD and to each
episode worker over a socket the zygote hands it (with a pidfd, so the server
can kill the worker without a pid-reuse race).
"""

from __future__ import annotations

import builtins
import copy
import gc
import inspect
import json
import os
import random
import resource
import select
import shutil
import signal
import socket
import sys
import types
from typing import Any

from envscaler.runtime import codec, framing

MAX_REQUEST_BYTES = 64 << 20  # what the trusted server sends; it enforces its own caps first
SWEEP_ENV = "ENVSCALER_SANDBOX_SWEEP"  # set in the container image: this process tree owns its PID namespace


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


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"ok": False, "kind": kind, "message": message}


def _describe_exception(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ---------------------------------------------------------------- episode worker


def state_of(instance: Any) -> dict[str, Any]:
    """EnvScaler's state: the instance's attributes without dunder keys, deep-copied."""
    return copy.deepcopy({k: v for k, v in vars(instance).items() if not (k.startswith("__") and k.endswith("__"))})


def instantiate(cls: type, init_config: dict[str, Any]) -> Any:
    """EnvScaler's way: cls(config), falling back to cls(), then setattr of each key."""
    config = copy.deepcopy(init_config)
    try:
        instance = cls(copy.deepcopy(config))
    except TypeError:
        instance = cls()
    for key, value in config.items():
        setattr(instance, key, value)
    return instance


class Episode:
    def __init__(self, instance: Any, tools: Tools, settings: dict[str, Any]) -> None:
        self.instance = instance
        self.tools = tools
        self.observation = settings.get("observation", "repr")
        self.max_bytes = int(settings.get("max_result_bytes", 1 << 20))
        self.initial_state = state_of(instance)
        self.pid = os.getpid()

    def encode_state(self) -> dict[str, Any]:
        text = codec.dumps(state_of(self.instance))
        return {"ok": True, "state": text, "sha256": codec.sha256(text)}

    def call(self, name: Any, arguments: Any) -> dict[str, Any]:
        if not isinstance(name, str) or name.startswith("_") or name not in self.tools:
            return _error("UNKNOWN_TOOL", f"unknown tool {name!r}; available: {', '.join(sorted(self.tools))}")
        method = getattr(self.instance, name, None)
        if not callable(method):
            return _error("UNKNOWN_TOOL", f"tool {name!r} is not a method of the environment")
        if not isinstance(arguments, dict):
            return _error("INVALID_ARGUMENTS", f"arguments of {name!r} must be a JSON object, "
                                               f"got {type(arguments).__name__}")
        known = self.tools[name]
        try:
            signature = known[1] if known and getattr(method, "__func__", None) is known[0] \
                else inspect.signature(method)
            signature.bind(**arguments)
        except TypeError as exc:
            return _error("INVALID_ARGUMENTS", f"invalid arguments for {name!r}: {exc}")
        except ValueError:
            pass  # no signature available (a builtin): let the call decide
        try:
            result = method(**arguments)
        except Exception as exc:
            return _error("TOOL_EXCEPTION", f"tool {name!r} raised {_describe_exception(exc)}")
        return self.encode_result(name, result)

    def encode_result(self, name: str, result: Any) -> dict[str, Any]:
        try:
            text = codec.dumps(result)
        except (codec.EncodeError, RecursionError, ValueError, TypeError) as exc:
            return _error("UNSERIALIZABLE_RESULT", f"result of {name!r} cannot be encoded as JSON: {exc}")
        observation = text if self.observation == "json" else str(result)
        size = max(len(text.encode()), len(observation.encode()))
        if size > self.max_bytes:
            return _error("RESULT_TOO_LARGE", f"result of {name!r} is {size} bytes, over the "
                                              f"{self.max_bytes}-byte cap")
        return {"ok": True, "result": text, "observation": observation}

    def evaluate(self, checks: list[Any], check_timeout: float) -> dict[str, Any]:
        """Run checks in a forked child, so they cannot touch the live episode and a
        check that overruns is killed alone: the episode survives it."""
        final_state = state_of(self.instance)
        results: list[dict[str, Any]] = []
        while len(results) < len(checks):
            results += self._evaluate_from(checks, len(results), final_state, check_timeout)
        return {"ok": True, "results": results}

    def _evaluate_from(self, checks: list[Any], start: int, final_state: dict[str, Any],
                       check_timeout: float) -> list[dict[str, Any]]:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_fd)
                evaluator = os.getpid()
                for source in checks[start:]:
                    line = json.dumps(self.run_check(source, final_state)) + "\n"
                    if os.getpid() != evaluator:  # a check forked: its copies must not answer
                        os._exit(0)
                    os.write(write_fd, line.encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        results: list[dict[str, Any]] = []
        buffer = b""
        try:
            while start + len(results) < len(checks):
                while b"\n" not in buffer:
                    ready, _, _ = select.select([read_fd], [], [], check_timeout)
                    chunk = os.read(read_fd, 65536) if ready else b""
                    if not chunk:
                        os.kill(pid, signal.SIGKILL)
                        reason = (f"check_func overran its {check_timeout:g} s deadline" if not ready
                                  else "check_func crashed the interpreter")
                        results.append({"outcome": "ERROR", "message": reason})
                        return results
                    buffer += chunk
                line, buffer = buffer.split(b"\n", 1)
                results.append(json.loads(line))
        finally:
            os.close(read_fd)
            os.waitpid(pid, 0)
        return results

    def run_check(self, source: Any, final_state: dict[str, Any]) -> dict[str, Any]:
        namespace: dict[str, Any] = {"__builtins__": builtins, "__name__": "envscaler_check",
                                     "initial_state": copy.deepcopy(self.initial_state)}
        try:
            exec(compile(str(source), "<check_func>", "exec"), namespace)
            func = namespace.get("check_func")
            if not callable(func):
                return {"outcome": "ERROR", "message": "the source does not define check_func"}
            value = func(copy.deepcopy(final_state))
        except Exception as exc:
            return {"outcome": "ERROR", "message": f"check_func raised {_describe_exception(exc)}"[:2000]}
        if not isinstance(value, bool):
            return {"outcome": "ERROR", "message": f"check_func returned {type(value).__name__}, not bool"}
        return {"outcome": "PASS" if value else "FAIL", "message": ""}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "call":
            return self.call(request.get("name"), request.get("arguments"))
        if op == "state":
            return self.encode_state()
        if op == "evaluate":
            return self.evaluate(list(request.get("checks") or []), float(request.get("check_timeout", 10.0)))
        return _error("PROTOCOL_ERROR", f"unknown op {op!r}")


def warm_up() -> None:
    """Run the hot paths once while waiting, so copy-on-write faults are paid before the reset, not during it."""
    sample = {"k": [1, 2.5, "x", None, {"n": True}]}
    codec.sha256(codec.dumps(copy.deepcopy(sample)))
    framing.encode(sample)
    str(sample)


def run_episode(sock: socket.socket, cls: type, tools: Tools, settings: dict[str, Any]) -> None:
    """The forked worker's whole life: wait for its reset, instantiate, answer requests until EOF."""
    warm_up()
    try:
        request = framing.recv(sock, MAX_REQUEST_BYTES)
    except framing.FrameError:
        return
    seed = request.get("seed") or 0
    if seed:
        random.seed(seed)
    try:
        episode = Episode(instantiate(cls, request.get("init_config") or {}), tools, settings)
        framing.send(sock, episode.encode_state())
    except Exception as exc:
        framing.send(sock, _error("RESET_FAILED", f"the environment failed to instantiate: "
                                                  f"{_describe_exception(exc)}"))
        return
    while True:
        try:
            message = framing.recv(sock, MAX_REQUEST_BYTES)
        except framing.FrameError:
            return
        reply = episode.handle(message)
        if os.getpid() != episode.pid:  # a tool forked: only the worker itself may answer
            os._exit(0)
        framing.send(sock, reply)


# ---------------------------------------------------------------- zygote


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
    """A worker forked ahead of time, waiting for its reset: Reset never waits for fork()."""

    def __init__(self, control: socket.socket, cls: type, tools: Tools, settings: dict[str, Any]) -> None:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:  # the episode worker
            code = 0
            try:
                control.close()
                parent_end.close()
                os.setpgid(0, 0)
                run_episode(child_end, cls, tools, settings)
            except SystemExit as exc:  # sys.exit() inside a tool ends the worker with its status
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                code = 70
            finally:
                os._exit(code)
        child_end.close()
        self.pid, self.sock = pid, parent_end
        try:
            self.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):  # no pidfd (old kernel, some sandboxes): the server falls back to kill
            self.pidfd = -1

    def hand_over(self, control: socket.socket) -> None:
        fds = [self.sock.fileno()] + ([self.pidfd] if self.pidfd >= 0 else [])
        framing.send(control, {"ok": True, "pid": self.pid, "pidfd": self.pidfd >= 0}, fds=fds)
        self.sock.close()
        if self.pidfd >= 0:
            os.close(self.pidfd)


def sweep(keep: set[int]) -> int:
    """Inside a sandbox container only: end every process an episode left behind (daemons that
    escaped the worker's process group) and empty /tmp, so nothing reaches the next episode."""
    killed = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in keep:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"envscaler.runtime.healthcheck" in f.read():
                    continue
            os.kill(int(entry), signal.SIGKILL)
            killed += 1
        except (OSError, ValueError):
            continue
    for name in os.listdir("/tmp"):
        path = os.path.join("/tmp", name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            continue
    return killed


def reap(pid: int) -> str:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return "already reaped"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return f"killed by signal {signal.Signals(number).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def reap_finished() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve(control: socket.socket) -> None:
    load = framing.recv(control, MAX_REQUEST_BYTES)
    settings = load.get("settings") or {}
    apply_limits(settings.get("limits") or {})
    try:
        cls = load_class(load["code"], load["class_name"], load.get("env_id", "env"))
    except BaseException as exc:
        framing.send(control, _error("LOAD_FAILED", f"the environment module failed to load: "
                                                    f"{_describe_exception(exc)}"))
        return
    tools = tool_signatures(cls, [str(name) for name in load.get("tools") or []])
    gc.freeze()  # keep the collector from writing to shared pages in every forked worker
    framing.send(control, {"ok": True})
    spare = Spare(control, cls, tools, settings)
    while True:
        try:
            request = framing.recv(control, MAX_REQUEST_BYTES)
        except framing.FrameError:
            return
        op = request.get("op")
        if op == "spawn":
            spare.hand_over(control)
            reap_finished()
            spare = Spare(control, cls, tools, settings)
        elif op == "reap":
            framing.send(control, {"ok": True, "status": reap(int(request.get("pid", 0)))})
        elif op == "sweep":
            killed = sweep({1, os.getpid(), os.getppid(), spare.pid}) if os.environ.get(SWEEP_ENV) == "1" else 0
            reap_finished()
            framing.send(control, {"ok": True, "killed": killed})
        else:
            framing.send(control, _error("PROTOCOL_ERROR", f"unknown op {op!r}"))


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    # Environment code may print; keep its output off the server's streams.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    serve(control)


if __name__ == "__main__":
    main()
