"""App-only Graph tokens for a Microsoft 365 tenant grant (MSAL, confidential client).

The client credentials grant
(https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow)
asks for ``https://graph.microsoft.com/.default``: the application permissions an
administrator consented to (Calendars.ReadWrite, User.Read.All, MailboxSettings.Read). The
app proves itself with a client secret or a certificate; for a certificate MSAL signs the
client assertion itself from the private key and the public certificate
(https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials).

One `AppTokenProvider` per grant per process: since MSAL 1.23 `acquire_token_for_client`
answers from its in-memory token cache until the token is near expiry, so every person's
calendar connector and the directory of that grant share one token; a lock serialises MSAL
(its HTTP session is not thread-safe). Secrets and tokens are never logged.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import msal
import requests

from connectors.errors import AuthRevoked, BadRequest, ConnectorError, NotFound, Transient
from connectors.microsoft.auth import error_description, is_microsoft_authority

GRAPH_APP_SCOPES = ("https://graph.microsoft.com/.default",)
REFUSED_CLIENT = frozenset({"invalid_client", "unauthorized_client"})
_AADSTS = re.compile(r"AADSTS\d+")
# what to do about the refusals an operator meets when connecting (codes: Entra's reference,
# https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes)
HINTS = {
    "AADSTS7000215": "Give the secret's Value, shown once when it was added, not its ID.",
    "AADSTS7000222": "The client secret has expired: add a new one.",
    "AADSTS700016": "Check the client id, and that the app is registered in this tenant.",
    "AADSTS700027": "Upload this certificate to the app registration.",
}


def tenant_authority(authority: str, tenant: str) -> str:
    """`authority` with its tenant segment (its last path segment: ``organizations``,
    ``common`` or a tenant id) replaced by `tenant`; the host (and any path before it) stays,
    so RAPPORT_MICROSOFT_AUTHORITY picks the cloud or the sandbox for company grants too."""
    parts = urlsplit(authority.rstrip("/"))
    head = parts.path.rpartition("/")[0]
    return urlunsplit((parts.scheme, parts.netloc, f"{head}/{quote(tenant, safe='')}", "", ""))


def client_credential(stored: Mapping[str, str]) -> str | dict[str, str]:
    """What MSAL takes as ``client_credential`` for a stored grant: the secret, or the
    private key with its public certificate (MSAL then signs with the certificate's SHA-256
    thumbprint, the form it recommends over the SHA-1 ``thumbprint``)."""
    if stored.get("client_secret"):
        return stored["client_secret"]
    return {"private_key": stored["private_key"], "public_certificate": stored["certificate"]}


class AppTokenProvider:
    """A `Callable[[], str]` giving an app-only Graph access token for one tenant grant."""

    def __init__(self, *, client_id: str, authority: str, credential: str | dict[str, str],
                 ca_file: str | Path | None = None,
                 scopes: tuple[str, ...] = GRAPH_APP_SCOPES) -> None:
        self.client_id = client_id
        self.authority = authority
        self.scopes = list(scopes)
        self._credential = credential
        self._ca_file = ca_file
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None

    def __call__(self) -> str:
        """A valid app-only access token, from MSAL's cache or fetched once."""
        with self._lock:
            app = self._application()
            try:
                result = app.acquire_token_for_client(scopes=self.scopes)
            except requests.RequestException as err:
                raise Transient(f"Microsoft authority unreachable: {type(err).__name__}") \
                    from err
        return _token_from(result, client_id=self.client_id)

    def _application(self) -> msal.ConfidentialClientApplication:
        """MSAL's app, built on first use: building it reads the tenant's OpenID
        configuration, which is where an unknown tenant shows (AADSTS90002)."""
        if self._app is not None:
            return self._app
        session = requests.Session()
        if self._ca_file is not None:
            session.verify = str(self._ca_file)  # a custom CA, never verification off
            session.trust_env = False
        own = is_microsoft_authority(self.authority)
        try:
            self._app = msal.ConfidentialClientApplication(
                self.client_id, authority=self.authority, client_credential=self._credential,
                http_client=session, instance_discovery=None if own else False,
                validate_authority=own)
        except ValueError as err:
            raise _discovery_error(err, self.authority) from err
        except requests.RequestException as err:
            raise Transient(f"cannot reach the Microsoft authority {self.authority}: "
                            f"{type(err).__name__}") from err
        return self._app


def _discovery_error(err: ValueError, authority: str) -> ConnectorError:
    """MSAL's ValueError about the tenant's OpenID configuration, as our error: a 4xx there
    is Entra saying the tenant does not exist (MSAL's own comment on `tenant_discovery`)."""
    detail = str(err.__context__ or err)
    tenant = authority.rstrip("/").rpartition("/")[2]
    if "HTTP status: 4" in detail:
        code = _AADSTS.search(detail)
        said = code.group(0) if code else "not found"
        return NotFound(f"Microsoft knows no tenant {tenant!r} ({said}): give the Directory "
                        "(tenant) ID from the app registration's overview")
    return ConnectorError(f"the Microsoft authority {authority} gave no usable configuration")


def _token_from(result: dict[str, Any], *, client_id: str) -> str:
    error = result.get("error")
    if not error:
        return str(result["access_token"])
    description = error_description(result)
    if error in REFUSED_CLIENT:
        code = _AADSTS.search(description)
        hint = HINTS.get(code.group(0)) if code else None
        raise AuthRevoked(f"Microsoft refused app {client_id} ({error}): {description}"
                          + (f" {hint}" if hint else ""))
    if error == "invalid_tenant":
        raise NotFound(f"Microsoft knows no such tenant ({error}): {description}")
    if error in ("invalid_scope", "invalid_resource", "invalid_request"):
        raise BadRequest(f"Microsoft refused the token request ({error}): {description}")
    if error in ("temporarily_unavailable", "server_error"):
        raise Transient(f"Microsoft authority error ({error}): {description}")
    raise ConnectorError(f"Microsoft authority error ({error}): {description}")
