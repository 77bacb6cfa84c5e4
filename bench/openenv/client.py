"""The benchmark's OpenEnv client: raw WebSocket frames over the container's Unix
socket (the leanest client OpenEnv's protocol allows). Runs with the staged
openenv-core site on PYTHONPATH; reads `N` lines on stdin and answers each with
N round-trip times in seconds, as JSON, so the caller can interleave it with its
own measurements.

    python bench/openenv/client.py SOCKET TOOL ARGUMENTS_JSON
"""

from __future__ import annotations

import json
import sys
import time

from websockets.sync.client import unix_connect


def main() -> None:
    socket_path, tool, arguments = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    step = json.dumps({"type": "step", "data": {"tool": tool, "arguments": arguments}})
    with unix_connect(socket_path, "ws://localhost/ws", max_size=None) as ws:
        ws.send(json.dumps({"type": "reset", "data": {}}))
        reply = json.loads(ws.recv())
        if reply.get("type") != "observation":
            sys.exit(f"openenv reset failed: {reply}")
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            samples = []
            for _ in range(int(line)):
                started = time.perf_counter()
                ws.send(step)
                reply = json.loads(ws.recv())
                samples.append(time.perf_counter() - started)
                if reply.get("type") != "observation":
                    sys.exit(f"openenv step failed: {reply}")
            print(json.dumps(samples), flush=True)


if __name__ == "__main__":
    main()
