"""Which CA bundle outgoing HTTPS trusts: one answer for Google, Graph and MSAL alike.

Verification is never turned off. Order: ``RAPPORT_CA_BUNDLE`` (an operator's company CA
behind a TLS-inspecting proxy), then the standard ``REQUESTS_CA_BUNDLE`` and
``SSL_CERT_FILE``, then the operating system's trust store. The libraries' own defaults
(certifi inside httplib2 and httpx) are used only when the system has no bundle file.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from service.settings import Settings


class CABundleMissing(ValueError):
    """A configured CA bundle file does not exist."""


def outgoing_ca_bundle(settings: Settings, environ: dict[str, str] | None = None) -> str | None:
    """The CA bundle path every outgoing HTTPS client verifies against (None: library default)."""
    env = os.environ if environ is None else environ
    if settings.ca_bundle is not None:
        return _existing(settings.ca_bundle, "RAPPORT_CA_BUNDLE")
    for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if env.get(variable):
            return _existing(Path(env[variable]), variable)
    system = ssl.get_default_verify_paths()
    for candidate in (system.cafile, system.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _existing(path: Path, source: str) -> str:
    if not path.is_file():
        raise CABundleMissing(f"{source} points to {path}, which is not a file")
    return str(path)
