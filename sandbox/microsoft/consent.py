"""The Entra sandbox's sign-in page and its `authorization_code` grant with PKCE.

Follows https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow:
- ``GET /{tenant}/oauth2/v2.0/authorize`` with client_id, response_type=code, redirect_uri,
  scope, state, nonce (OpenID Connect), code_challenge / code_challenge_method, login_hint,
  prompt. An unknown application (AADSTS700016) or a redirect URI it did not register
  (AADSTS50011) is an error page, not a redirect.
- The answer: a redirect with ``code``, ``state`` and ``session_state``; a person who declines
  gets ``error=access_denied`` with ``error_description`` (AADSTS65004) and ``state``.
- ``POST /{tenant}/oauth2/v2.0/token`` with grant_type=authorization_code, client_id, code,
  redirect_uri, code_verifier, scope: the usual token answer, its id_token carrying ``nonce``,
  ``aud`` (the client id) and ``iss``. An expired (AADSTS70008), used (AADSTS54005) or unknown
  code, another redirect URI, or a verifier that does not match the challenge (AADSTS501481)
  is 400 ``invalid_grant``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from sandbox.consent import consent_page, redirect_with
from sandbox.microsoft.authority import Grants, TokenGrant, _oauth_error

CARRIED = ("client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
           "code_challenge_method")
_DESCRIPTIONS = {
    "expired code": "AADSTS70008: The provided authorization code or refresh token has "
                    "expired due to inactivity.",
    "unknown or already used code": "AADSTS54005: OAuth2 Authorization code was already "
                                    "redeemed, please retry with a new valid code.",
    "code_verifier does not match the code_challenge": "AADSTS501481: The Code_Verifier "
                                                       "does not match the code_challenge "
                                                       "supplied in the authorization request.",
}


def _error_page(code: str, text: str) -> HTMLResponse:
    return HTMLResponse(f"<!DOCTYPE html><title>Sign in</title><h1>Sorry, but we're having "
                        f"trouble signing you in.</h1><p>{code}: {text}</p>", status_code=400)


def consent_router(grants: Grants) -> APIRouter:
    """The authorize page and the Allow / Deny answer, under ``/<tenant>``."""
    router = APIRouter()

    def refused(client_id: str, redirect_uri: str) -> HTMLResponse | None:
        with grants.codes.lock:
            known = client_id in grants.codes.clients
        if not known:
            return _error_page("AADSTS700016", f"Application with identifier '{client_id}' "
                                               "was not found in the directory.")
        if grants.codes.client_for(client_id, redirect_uri) is None:
            return _error_page("AADSTS50011", "The redirect URI specified in the request "
                                              "does not match the redirect URIs configured "
                                              "for the application.")
        return None

    @router.get("/{tenant}/oauth2/v2.0/authorize")
    def authorize(tenant: str, request: Request) -> Response:
        q = request.query_params
        problem = refused(q.get("client_id", ""), q.get("redirect_uri", ""))
        if problem is not None:
            return problem
        people = [(p.email, p.name) for p in grants.population.people_on("microsoft")
                  if not p.is_room]
        return HTMLResponse(consent_page(
            title="Sign in to the Microsoft sandbox", action=f"/{tenant}/oauth2/v2.0/decide",
            people=people, hint=q.get("login_hint"),
            carried={k: q[k] for k in CARRIED if k in q}, scope=q.get("scope", "")))

    @router.post("/{tenant}/oauth2/v2.0/decide")
    async def decide(tenant: str, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        redirect_uri = form.get("redirect_uri", "")
        problem = refused(form.get("client_id", ""), redirect_uri)
        if problem is not None:
            return problem
        state = {"state": form["state"]} if "state" in form else {}
        if form.get("decision") != "allow":
            return RedirectResponse(redirect_with(redirect_uri, {
                "error": "access_denied",
                "error_description": "AADSTS65004: User declined to consent to access the app.",
                **state}), 302)
        code = grants.codes.issue(client_id=form["client_id"], redirect_uri=redirect_uri,
                                  email=form.get("user", ""), scope=form.get("scope", ""),
                                  challenge=form.get("code_challenge"),
                                  method=form.get("code_challenge_method"),
                                  nonce=form.get("nonce"))
        return RedirectResponse(redirect_with(redirect_uri, {
            "code": code, **state, "session_state": secrets.token_hex(16)}), 302)

    return router


def code_grant(grants: Grants, root: Callable[[], str]) -> TokenGrant:
    """The token endpoint's authorization_code grant (for `authority_router`)."""

    def grant(tenant: str, form: dict[str, str]) -> JSONResponse:
        if not grants.codes.client_secret_ok(form.get("client_id", ""),
                                             form.get("client_secret")):
            return _oauth_error("invalid_client", "AADSTS7000215: Invalid client secret "
                                                  "provided.", 401)
        issued, problem = grants.codes.redeem(form)
        if issued is None:
            return _oauth_error("invalid_grant", _DESCRIPTIONS.get(
                problem, f"AADSTS9002313: Invalid request: {problem}."))
        with grants.lock:  # a new consent replaces a revoked grant
            grants.revoked.discard(issued.email)
            grants.refresh = {t: e for t, e in grants.refresh.items() if e != issued.email}
            return JSONResponse(grants.issue(issued.email, issued.client_id,
                                             form.get("scope", issued.scope),
                                             f"{root()}/{tenant}/v2.0", nonce=issued.nonce))

    return grant
