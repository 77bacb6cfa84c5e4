"""Python clients for the gRPC API: one environment server (EnvClient, AsyncEnvClient)."""

from envscaler.client.env_client import AsyncEnvClient, EnvClient
from envscaler.client.errors import EnvClientError
from envscaler.client.models import CheckResult, EnvInfo, Evaluation, ResetResult, StateSnapshot, ToolResult

__all__ = ["AsyncEnvClient", "CheckResult", "EnvClient", "EnvClientError", "EnvInfo", "Evaluation",
           "ResetResult", "StateSnapshot", "ToolResult"]
