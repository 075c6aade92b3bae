"""What both sandboxes' consent screens share: registered clients, issued codes, PKCE, the page.

Authorization codes are single-use and short-lived (RFC 6749 section 4.1.2: "a maximum
authorization code lifetime of 10 minutes is RECOMMENDED"; section 10.5), bound to the
client and the redirect URI they were issued for (section 4.1.3). PKCE (RFC 7636): the
authorization request carries `code_challenge` and `code_challenge_method`; the token request
carries `code_verifier`, and for S256 ``BASE64URL(SHA256(verifier)) == challenge`` must hold
(section 4.6). The page is plain HTML: pick a sandbox person, then Allow or Deny.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

CODE_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class Client:
    """An OAuth client as registered in the provider's console."""

    client_id: str
    client_secret: str | None  # None: a public client (no secret at the token endpoint)
    redirect_uris: frozenset[str]


@dataclass(frozen=True)
class IssuedCode:
    """What an authorization code was issued for."""

    client_id: str
    redirect_uri: str
    email: str
    scope: str
    challenge: str | None
    method: str | None
    expires: datetime
    nonce: str | None = None


def pkce_matches(challenge: str | None, method: str | None, verifier: str | None) -> bool:
    """RFC 7636 section 4.6: no challenge asks for no verifier; S256 compares the hash."""
    if challenge is None:
        return True
    if not verifier:
        return False
    if (method or "plain") == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        computed = verifier
    return hmac.compare_digest(computed.encode(), challenge.encode())


@dataclass
class Codes:
    """Registered clients and outstanding codes of one sandbox; guarded by `lock`."""

    now: Callable[[], datetime]
    lock: threading.RLock = field(default_factory=threading.RLock)
    clients: dict[str, Client] = field(default_factory=dict)
    issued: dict[str, IssuedCode] = field(default_factory=dict)

    def register(self, client_id: str, *, redirect_uris: Iterable[str],
                 client_secret: str | None = None) -> None:
        """Register (or replace) a client, as an admin does in the provider's console."""
        with self.lock:
            self.clients[client_id] = Client(client_id, client_secret, frozenset(redirect_uris))

    def reset(self) -> None:
        """Forget outstanding codes (registered clients stay, like a console's settings)."""
        with self.lock:
            self.issued.clear()

    def client_for(self, client_id: str, redirect_uri: str) -> Client | None:
        """The client when `redirect_uri` is one it registered, exactly; else None."""
        with self.lock:
            client = self.clients.get(client_id)
        return client if client is not None and redirect_uri in client.redirect_uris else None

    def issue(self, *, client_id: str, redirect_uri: str, email: str, scope: str,
              challenge: str | None, method: str | None, nonce: str | None = None) -> str:
        """A fresh single-use code for the person who pressed Allow."""
        code = "sandbox-code-" + secrets.token_urlsafe(24)
        with self.lock:
            self.issued[code] = IssuedCode(client_id, redirect_uri, email.lower(), scope,
                                           challenge, method, self.now() + CODE_LIFETIME,
                                           nonce)
        return code

    def redeem(self, form: Mapping[str, str]) -> tuple[IssuedCode | None, str]:
        """(the code's grant, "") or (None, why not): the code is gone either way."""
        with self.lock:
            issued = self.issued.pop(form.get("code", ""), None)
        if issued is None:
            return None, "unknown or already used code"
        if issued.expires <= self.now():
            return None, "expired code"
        if form.get("client_id") != issued.client_id:
            return None, "code issued to another client"
        if form.get("redirect_uri") != issued.redirect_uri:
            return None, "redirect_uri differs from the authorization request"
        if not pkce_matches(issued.challenge, issued.method, form.get("code_verifier")):
            return None, "code_verifier does not match the code_challenge"
        return issued, ""

    def client_secret_ok(self, client_id: str, secret: str | None) -> bool:
        """Whether a confidential client proved itself (a public client has nothing to prove)."""
        with self.lock:
            client = self.clients.get(client_id)
        if client is None:
            return False
        if client.client_secret is None:
            return True
        return hmac.compare_digest((secret or "").encode(), client.client_secret.encode())


def redirect_with(redirect_uri: str, params: Mapping[str, str]) -> str:
    """The redirect URI with the answer in its query (RFC 6749 section 4.1.2)."""
    joiner = "&" if "?" in redirect_uri else "?"
    return f"{redirect_uri}{joiner}{urlencode(dict(params))}"


def consent_page(*, title: str, action: str, people: Iterable[tuple[str, str]],
                 hint: str | None, carried: Mapping[str, str], scope: str) -> str:
    """The sandbox's consent screen: choose who signs in, then Allow or Deny."""
    esc = html.escape
    options = "".join(
        f'<option value="{esc(email)}"{" selected" if hint and email == hint.lower() else ""}>'
        f"{esc(name)} &lt;{esc(email)}&gt;</option>" for email, name in people)
    hidden = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">'
                     for k, v in carried.items())
    scopes = "".join(f"<li>{esc(s)}</li>" for s in scope.split())
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title></head><body><h1>{esc(title)}</h1>"
        f"<form method=\"post\" action=\"{esc(action)}\">{hidden}"
        f"<label>Sign in as <select name=\"user\" id=\"user\">{options}</select></label>"
        f"<p>The application asks for:</p><ul>{scopes}</ul>"
        "<button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Allow</button> "
        "<button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button>"
        "</form></body></html>")
