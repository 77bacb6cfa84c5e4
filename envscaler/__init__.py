"""envscaler-runtime: sandboxed, pooled runtime for synthesized tool environments."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Lazy: importlib.metadata costs ~45 ms and several MiB in every sandbox process that imports the package.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("envscaler-runtime")
        except PackageNotFoundError:  # running from a source tree that is not installed
            return "0.0.0"
    raise AttributeError(f"module 'envscaler' has no attribute {name!r}")
