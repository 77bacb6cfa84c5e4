"""envscaler-runtime: sandboxed, pooled runtime for synthesized tool environments."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("envscaler-runtime")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
