"""The Google sandbox's consent screen and its `authorization_code` grant.

Follows https://developers.google.com/identity/protocols/oauth2/web-server:
- Step 2, ``GET /o/oauth2/v2/auth`` with client_id, redirect_uri, response_type=code,
  scope, state, access_type, prompt, login_hint and the PKCE code_challenge /
  code_challenge_method. A client or redirect URI that is not registered exactly gets an
  error page (``Error 400: redirect_uri_mismatch``) and no redirect.
- Step 4, the answer: a redirect to redirect_uri with ``code`` and ``state`` (and the granted
  ``scope``), or ``error=access_denied`` and ``state`` when the person denies.
- Step 5, ``POST /token`` with grant_type=authorization_code, code, redirect_uri,
  code_verifier and the client credentials (in the body, or HTTP Basic as RFC 6749 section
  2.3.1 allows; requests-oauthlib sends Basic): access_token, expires_in, refresh_token,
  scope, token_type. Wrong client credentials: 401 ``invalid_client``; an unknown, used or
  expired code, another redirect_uri or a verifier that does not match: 400 ``invalid_grant``.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from sandbox.consent import Codes, consent_page, redirect_with
from sandbox.google.runtime import Runtime

AUTHORIZE_PATH = "/o/oauth2/v2/auth"
DECIDE_PATH = "/o/oauth2/v2/auth/decide"
CARRIED = ("client_id", "redirect_uri", "scope", "state", "code_challenge",
           "code_challenge_method")


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode()).items()}


def _basic(request: Request) -> tuple[str, str] | None:
    """Client id and secret from an HTTP Basic header (each form-urlencoded, section 2.3.1)."""
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return unquote(user), unquote(password)


class GoogleConsent:
    """The authorization endpoint and the code grant over the runtime's grants."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.codes = Codes(now=runtime.now)

    def _people(self) -> list[tuple[str, str]]:
        return [(p.email, p.name) for p in self.rt.population.people_on("google")
                if not p.is_room]

    def _mismatch(self) -> HTMLResponse:
        return HTMLResponse("<!DOCTYPE html><title>Error</title><h1>Access blocked: "
                            "this app's request is invalid</h1><p>Error 400: "
                            "redirect_uri_mismatch</p>", status_code=400)

    async def authorize(self, request: Request) -> Response:
        """Step 2: the consent screen for a registered client and redirect URI."""
        q = request.query_params
        client_id, redirect_uri = q.get("client_id", ""), q.get("redirect_uri", "")
        if self.codes.client_for(client_id, redirect_uri) is None:
            return self._mismatch()
        if q.get("response_type") != "code":
            return RedirectResponse(redirect_with(redirect_uri, {
                "error": "unsupported_response_type", "state": q.get("state", "")}), 302)
        carried = {k: q[k] for k in CARRIED if k in q}
        return HTMLResponse(consent_page(
            title="Sign in with the Google sandbox", action=DECIDE_PATH, people=self._people(),
            hint=q.get("login_hint"), carried=carried, scope=q.get("scope", "")))

    async def decide(self, request: Request) -> Response:
        """Step 4: Allow redirects with a code, Deny with ``error=access_denied``."""
        form = _form(await request.body())
        redirect_uri = form.get("redirect_uri", "")
        if self.codes.client_for(form.get("client_id", ""), redirect_uri) is None:
            return self._mismatch()
        state = {"state": form["state"]} if "state" in form else {}
        if form.get("decision") != "allow":
            return RedirectResponse(redirect_with(redirect_uri,
                                                  {"error": "access_denied", **state}), 302)
        code = self.codes.issue(client_id=form["client_id"], redirect_uri=redirect_uri,
                                email=form.get("user", ""), scope=form.get("scope", ""),
                                challenge=form.get("code_challenge"),
                                method=form.get("code_challenge_method"))
        return RedirectResponse(redirect_with(redirect_uri, {
            "code": code, **state, "scope": form.get("scope", "")}), 302)

    async def grant(self, request: Request, form: dict[str, str]) -> JSONResponse:
        """Step 5: the authorization_code grant, PKCE checked."""
        basic = _basic(request)
        if basic is not None:
            form = {**form, "client_id": basic[0], "client_secret": basic[1]}
        client_id = form.get("client_id", "")
        if not self.codes.client_secret_ok(client_id, form.get("client_secret")):
            return JSONResponse({"error": "invalid_client", "error_description": "Unauthorized"},
                                status_code=401)
        issued, problem = self.codes.redeem(form)
        if issued is None:
            return JSONResponse({"error": "invalid_grant", "error_description": problem},
                                status_code=400)
        refresh = "sandbox-refresh-" + secrets.token_urlsafe(24)
        with self.rt.lock:  # a new consent replaces a revoked grant, as at Google
            self.rt.refresh_tokens = {t: e for t, e in self.rt.refresh_tokens.items()
                                      if e != issued.email}
            self.rt.revoked.discard(issued.email)
            self.rt.refresh_tokens[refresh] = issued.email
        access = self.rt.refresh(refresh)
        body: dict[str, Any] = {"access_token": access, "expires_in": 3599,
                                "refresh_token": refresh, "scope": issued.scope,
                                "token_type": "Bearer"}
        return JSONResponse(body)
