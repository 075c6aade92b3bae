"""Microsoft 365 connector: Graph v1.0 client, raw types, pure parsing, the provider, MSAL auth."""

from connectors.microsoft.connector import GraphConnector, is_foreign_link

__all__ = ["GraphConnector", "is_foreign_link"]
