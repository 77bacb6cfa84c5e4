"""`envscaler-runtime k8s manifests --out DIR`: the arguments and the writing (cli.py only dispatches here)."""

from __future__ import annotations

import argparse
from pathlib import Path

from envscaler.k8s.manifests import Settings, all_manifests


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Settings()
    parser.add_argument("--out", type=Path, required=True, help="folder for the YAML files")
    parser.add_argument("--only", nargs="+", metavar="ENV_ID", help="only these environments")
    parser.add_argument("--namespace", default=defaults.namespace, help=f"({defaults.namespace})")
    parser.add_argument("--registry", default=defaults.registry,
                        help=f"where the cluster pulls the environment images from ({defaults.registry})")
    parser.add_argument("--runtime-class", default=defaults.runtime_class,
                        help=f"the sandbox pods' RuntimeClass ({defaults.runtime_class})")
    parser.add_argument("--warm", type=int, default=defaults.warm,
                        help=f"ready pods per environment in its SandboxWarmPool ({defaults.warm})")
    parser.add_argument("--memory-mb", type=int, default=defaults.memory_mb, help=f"({defaults.memory_mb})")
    parser.add_argument("--cpus", type=float, default=defaults.cpus, help=f"({defaults.cpus:g})")
    parser.add_argument("--pool-image", default=defaults.pool_image,
                        help=f"DaemonSet variant: the image with envscaler-runtime ({defaults.pool_image})")
    parser.add_argument("--pool-size", type=int, default=defaults.pool_size,
                        help=f"DaemonSet variant: containers per node ({defaults.pool_size})")


def settings_of(args: argparse.Namespace) -> Settings:
    if args.warm < 0 or args.pool_size < 1 or args.memory_mb < 16 or args.cpus <= 0:
        raise ValueError("--warm must be at least 0, --pool-size at least 1, --memory-mb at least 16, "
                         "--cpus above 0")
    return Settings(namespace=args.namespace, registry=args.registry.rstrip("/"), runtime_class=args.runtime_class,
                    warm=args.warm, memory_mb=args.memory_mb, cpus=args.cpus, pool_image=args.pool_image,
                    pool_size=args.pool_size)


def write(out: Path, envs: dict[str, str], settings: Settings) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    import yaml  # the [server] extra, needed only here

    written = []
    for name, objects in all_manifests(envs, settings).items():
        path = out / name
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written
