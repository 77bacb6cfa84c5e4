"""One node's pool, run as a child process of that node's Ray actor: today's pool (envscaler/pool/runner.py) on the
node's own Docker engine, with the pool's hardening. It prints one JSON line once it serves ({"address", "pool_id"}) and
drains (removing its containers) on SIGTERM or as soon as its parent, the actor, is gone.

    ENVSCALER_NODE_POOL_TOKEN=... python -m envscaler.ray.node_pool '{"pool_id": ..., "listen": "tcp:10.0.0.5:0", ...}'

It listens on the node's IP, so with a bearer token (from the environment, not the command line that every local
user can read) and TLS under a certificate it makes for that IP; its first line carries the certificate.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from envscaler.containers.hardening import Hardening
from envscaler.images.engine import EngineError, connect
from envscaler.pool import event_loop
from envscaler.pool.runner import PoolOptions, build_images, serve_pool
from envscaler.protocol.addresses import grpc_address
from envscaler.ray.actor import TOKEN_ENV
from envscaler.ray.tls import self_signed
from envscaler.spec.loader import SpecError, load_corpus


def options_of(config: dict[str, Any]) -> PoolOptions:
    hardening = Hardening(client_checks=False, **config.get("hardening", {}))
    return PoolOptions(size=int(config["size"]), listen=config["listen"], lease_ttl=float(config.get("lease_ttl", 600)),
                       acquire_wait=float(config.get("acquire_wait", 30)), hardening=hardening,
                       only=config.get("only"), pool_id=config["pool_id"],
                       tool_schemas=config.get("tool_schemas", "derived"))


def secure(options: PoolOptions, folder: Path) -> str:
    """Token and TLS for the pool's listen address (written to `folder`, 0600); returns the certificate (PEM)."""
    token = os.environ.pop(TOKEN_ENV, "")
    if not token:
        raise ValueError(f"{TOKEN_ENV} is not set: a node pool listens on the node's IP only with a token")
    token_file = folder / "token"
    token_file.touch(mode=0o600)
    token_file.write_text(token)
    ip = grpc_address(options.listen).rsplit(":", 1)[0].strip("[]")
    cert, key = self_signed(ip, folder)
    options.token_file, options.tls_cert, options.tls_key = str(token_file), str(cert), str(key)
    return cert.read_text()


def corpus_files(config: dict[str, Any], folder: Path) -> tuple[Path | None, Path | None]:
    """The corpus travels inside the config (the driver's files need not exist on this node)."""
    paths: list[Path | None] = []
    for key in ("envs_json", "scenarios_json"):
        text = config.get(key)
        if text is None:
            paths.append(None)  # the bundled examples
            continue
        path = folder / f"{key.removesuffix('_json')}.json"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def watch_parent(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, parent: int) -> None:
    """Stop when the actor that started this pool is gone (killed, or its node removed): never outlive it."""
    while not stop.is_set():
        if os.getppid() != parent:
            loop.call_soon_threadsafe(stop.set)
            return
        threading.Event().wait(0.5)


def main(argv: list[str]) -> int:
    parent = os.getppid()
    try:
        config = json.loads(argv[0])
        options = options_of(config)
        with tempfile.TemporaryDirectory(prefix="envscaler-ray-") as folder:
            certificate = secure(options, Path(folder))
            envs, scenarios = corpus_files(config, Path(folder))
            corpus = load_corpus(envs, scenarios, strict=False)
            client = connect()
            log = Path(folder) / "images.log"
            images, failed = build_images(client, corpus, options, log)
            if not images:
                reasons = "; ".join(f"{r.env_id}: {r.message}" for r in failed) or "no environment"
                raise EngineError(f"no environment image could be built on this node: {reasons}")
            event_loop.run(serve(client, corpus, images, options, failed, parent, certificate))
    except (EngineError, SpecError, OSError, KeyError, ValueError) as exc:
        print(f"envscaler node pool: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


async def serve(client: Any, corpus: Any, images: dict[str, str], options: PoolOptions, failed: list[Any],
                parent: int, certificate: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    threading.Thread(target=watch_parent, args=(loop, stop, parent), daemon=True, name="parent-watch").start()

    def started(_manager: object, address: str) -> None:
        print(json.dumps({"address": address, "pool_id": options.pool_id, "envs": sorted(images),
                          "failed": {r.env_id: r.message for r in failed}, "certificate": certificate}), flush=True)

    await serve_pool(client, corpus, images, options, stop, started)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
