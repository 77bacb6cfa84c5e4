"""Test your own environments against real hardened containers (the third front door).

- `EnvScalerContainer(env_id, envs=..., scenarios=...)`: a testcontainers container of one environment, fully
  hardened, no Ryuk; `.client()` is a connected `EnvClient` (envscaler/testing/container.py; needs testcontainers).
- `local_pool(envs, scenarios, size=2)`: a small in-process pool (envscaler/pool/runner.py `LocalPool`).
- the pytest plugin (envscaler/testing/plugin.py, entry point `envscaler`): fixtures `envscaler_pool` and `env_session`.

Names are imported on first use, so loading the pytest plugin costs nothing and needs neither Docker nor
testcontainers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envscaler.pool.runner import LocalPool
    from envscaler.testing.container import EnvScalerContainer

__all__ = ["EnvScalerContainer", "LocalPool", "local_pool"]


def local_pool(envs: str | Path | None = None, scenarios: str | Path | None = None, size: int = 2,
               **options: Any) -> LocalPool:
    """A small in-process pool over a corpus (the bundled one when omitted); use it as a context manager, then
    `.pool.session(env_id, scenario)`. Extra keyword arguments are `PoolOptions` fields."""
    from envscaler.pool.runner import LocalPool, PoolOptions

    return LocalPool(envs=Path(envs) if envs else None, scenarios=Path(scenarios) if scenarios else None,
                     options=PoolOptions(size=size, **options))


def __getattr__(name: str) -> Any:
    if name == "EnvScalerContainer":
        from envscaler.testing.container import EnvScalerContainer

        return EnvScalerContainer
    if name == "LocalPool":
        from envscaler.pool.runner import LocalPool

        return LocalPool
    raise AttributeError(f"module 'envscaler.testing' has no attribute {name!r}")
