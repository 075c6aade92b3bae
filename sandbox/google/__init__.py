"""A local Google Calendar API v3 sandbox (HTTP emulator) for tests and the demo."""

from sandbox.google.sandbox import GoogleSandbox

__all__ = ["GoogleSandbox"]
