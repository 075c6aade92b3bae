"""The Microsoft 365 sandbox: Graph v1.0 and a fake Entra ID authority over HTTPS."""

from sandbox.microsoft.sandbox import GraphSandbox

__all__ = ["GraphSandbox"]
