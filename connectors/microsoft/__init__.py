"""Microsoft 365 connector: Graph v1.0 client, raw types, pure parsing, the provider, MSAL auth."""

from connectors.microsoft.connector import GraphConnector, cursor_is_stale

__all__ = ["GraphConnector", "cursor_is_stale"]
