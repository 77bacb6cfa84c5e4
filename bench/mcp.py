"""The MCP front door against its floor, measured in the same run: `.venv/bin/python -m bench.mcp`.

Floor: a bare MCP echo server with the same SDK and the same transport settings (low-level Server, stateless
Streamable HTTP with JSON responses under uvicorn; stdio), called by the official client. Measured: one tool call
through `envscaler-runtime mcp` (HTTP and stdio) into a leased container of a real pool. Writes
bench/results/mcp.json and prints a table with the machine. Goal: the front door's p50 <= 1.5x the floor's.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import mcp_types as types
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from bench.machine import machine

RESULTS = Path(__file__).resolve().parent / "results"
CLI = str(Path(sys.executable).parent / "envscaler-runtime")
MODE = "2026-07-28"
ENV, SCENARIO, TOOL, ARGS = "env_1", "0115-091204", "search_books", {"query": "Dune"}


def echo_server() -> Any:
    from mcp.server import Server

    schema = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name=TOOL, description="echo", input_schema=schema)])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        text = json.dumps(params.arguments)
        return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=params.arguments)

    # The same schema hook as the front door's, so that the floor does not pay a tools/list per call either.
    return Server("echo", on_list_tools=list_tools, on_call_tool=call_tool,
                  get_tool_input_schema=lambda name: schema if name == TOOL else None)


def serve_echo_http(port: int) -> None:
    import contextlib

    import uvicorn
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.applications import Starlette
    from starlette.routing import Route

    manager = StreamableHTTPSessionManager(app=echo_server(), stateless=True, json_response=True)

    class Endpoint:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await manager.handle_request(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        async with manager.run():
            yield

    app = Starlette(routes=[Route("/mcp", Endpoint())], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def serve_echo_stdio() -> None:
    from mcp.server.stdio import stdio_server

    async def main() -> None:
        server = echo_server()
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("server did not listen")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _calls(server: Any, n: int) -> list[float]:
    """Seconds per call_tool, after a warm-up, through the official client."""
    async with Client(server, mode=MODE, cache=None) as client:
        for _ in range(20):
            result = await client.call_tool(TOOL, ARGS)
            assert not result.is_error, result.content
        times = []
        for _ in range(n):
            started = time.perf_counter()
            await client.call_tool(TOOL, ARGS)
            times.append(time.perf_counter() - started)
        return times


def _stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"p50_ms": statistics.median(ordered) * 1000, "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
            "n": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--pool", help="a running pool; default: a LocalPool of env_1 in this process")
    parser.add_argument("--echo-http", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--echo-stdio", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_http:
        return serve_echo_http(args.echo_http)
    if args.echo_stdio:
        return serve_echo_stdio()

    import contextlib

    from envscaler.pool.runner import LocalPool, PoolOptions

    results: dict[str, Any] = {"machine": machine(), "protocol": MODE, "tool": TOOL}
    with contextlib.ExitStack() as stack:
        pool = args.pool
        if pool is None:
            local = stack.enter_context(LocalPool(options=PoolOptions(size=2, only=[ENV])))
            pool = local.address
        port = _port()
        echo = subprocess.Popen([sys.executable, "-m", "bench.mcp", "--echo-http", str(port)])
        stack.callback(_stop, echo)
        _wait_listening(port, echo)
        door_port = _port()
        door = subprocess.Popen([CLI, "mcp", "--pool", pool, "--listen", f"127.0.0.1:{door_port}"])
        stack.callback(_stop, door)
        _wait_listening(door_port, door)
        lease = httpx.post(f"http://127.0.0.1:{door_port}/v1/leases", json={"env_id": ENV, "scenario_id": SCENARIO},
                           timeout=120).json()
        # Interleaved rounds so that drift of the shared machine falls on both sides alike.
        floor_http: list[float] = []
        door_http: list[float] = []
        floor_stdio: list[float] = []
        door_stdio: list[float] = []
        rounds = 4
        echo_stdio = StdioServerParameters(command=sys.executable, args=["-m", "bench.mcp", "--echo-stdio"])
        door_stdio_params = StdioServerParameters(command=CLI, args=["mcp", "--stdio", "--pool", pool, "--env", ENV,
                                                                     "--scenario", SCENARIO])
        for _ in range(rounds):
            floor_http += anyio.run(_calls, f"http://127.0.0.1:{port}/mcp", args.calls // rounds)
            door_http += anyio.run(_calls, f"http://127.0.0.1:{door_port}{lease['mcp_url']}", args.calls // rounds)
            floor_stdio += anyio.run(_calls, echo_stdio, args.calls // rounds)
            door_stdio += anyio.run(_calls, door_stdio_params, args.calls // rounds)
        httpx.delete(f"http://127.0.0.1:{door_port}/v1/leases/{lease['lease_id']}", timeout=30)
    results["http"] = {"echo_floor": _stats(floor_http), "front_door": _stats(door_http)}
    results["stdio"] = {"echo_floor": _stats(floor_stdio), "front_door": _stats(door_stdio)}
    for transport in ("http", "stdio"):
        part = results[transport]
        part["ratio_p50"] = part["front_door"]["p50_ms"] / part["echo_floor"]["p50_ms"]
        part["ratio_p99"] = part["front_door"]["p99_ms"] / part["echo_floor"]["p99_ms"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mcp.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"MCP front door vs a bare MCP echo server (same SDK, same run), {MODE}, {args.calls} calls each")
    print(f"machine: {results['machine']}")
    print(f"{'transport':<10}{'floor p50':>11}{'floor p99':>11}{'door p50':>10}{'door p99':>10}{'ratio p50':>11}"
          f"{'ratio p99':>11}")
    for transport in ("http", "stdio"):
        part = results[transport]
        print(f"{transport:<10}{part['echo_floor']['p50_ms']:>9.2f}ms{part['echo_floor']['p99_ms']:>9.2f}ms"
              f"{part['front_door']['p50_ms']:>8.2f}ms{part['front_door']['p99_ms']:>8.2f}ms"
              f"{part['ratio_p50']:>10.2f}x{part['ratio_p99']:>10.2f}x")
    met = all(results[t]["ratio_p50"] <= 1.5 for t in ("http", "stdio"))
    print(f"goal: front door p50 <= 1.5x the floor: {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
