"""`/connect/google` and `/connect/microsoft`: sign-in on the web for teams without an admin.

GET shows the consent page (what Rapport reads and writes, what it never does); its button
POSTs a form token (CSRF: a sealed nonce that must match the HttpOnly, SameSite=Lax form
cookie, which a cross-site POST does not carry). The POST starts the provider's flow and
keeps it in a sealed cookie (`SIGN_IN_FLOW`, ten minutes, HttpOnly, SameSite=Lax, Secure on
https) so that any web process can finish it; the callback checks the cookie, then the
`state` (RFC 6749 section 10.12), then the provider's answer, and removes the cookie
whatever happens, so a replayed callback finds no flow. Nothing is saved unless the code is
redeemed and the account answers. A re-consent email links here with a signed `account`
(purpose `RECONNECT`), which becomes the login hint.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from application.web.pages import PAGE_HEADERS, env
from service.accounts.crypto import Vault
from service.accounts.models import Account
from service.accounts.signing import (
    RECONNECT,
    SIGN_IN_FLOW,
    SIGN_IN_FORM,
    LinkCheck,
    link_key,
    links_version,
    public_base,
    seal,
    unseal,
    verify_link,
)
from service.calendars import signin
from service.settings import Settings

log = logging.getLogger(__name__)

FLOW_COOKIE = "rapport_signin"
FORM_COOKIE = "rapport_form"
FLOW_LIFETIME = timedelta(minutes=10)
FORM_LIFETIME = timedelta(hours=1)
MAX_FORM_BYTES = 4096
# the consent pages load nothing, run no script and may not be framed (clickjacking)
SIGN_IN_HEADERS = {**PAGE_HEADERS, "X-Frame-Options": "DENY",
                   "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                              "frame-ancestors 'none'; base-uri 'none'"}
PROVIDER_NAMES = {"google": "Google", "microsoft": "Microsoft 365"}


def _page(template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(env.get_template(template).render(**context), status_code=status,
                        headers=SIGN_IN_HEADERS)


def _refused(provider: str, reason: str, status: int = 400) -> HTMLResponse:
    """One clear page per way a sign-in fails; the flow cookie goes with it."""
    response = _page("signin_refused.html", status=status, reason=reason, provider=provider,
                     provider_name=PROVIDER_NAMES.get(provider, provider),
                     start=f"/connect/{provider}" if provider in PROVIDER_NAMES else None)
    response.delete_cookie(FLOW_COOKIE, path="/connect")
    return response


def signin_router(settings: Settings, factory: sessionmaker[Session], *,
                  clock: Callable[[], datetime],
                  on_connected: Callable[[int], Any] = lambda account_id: None) -> APIRouter:
    """The sign-in routes; `on_connected(account_id)` starts the first sync (the workers)."""
    router = APIRouter()
    key = link_key(settings)
    vault = Vault.from_settings(settings)
    secure = public_base(settings).startswith("https://")

    def redirect_uri(provider: str) -> str:
        return f"{public_base(settings)}/connect/{provider}/callback"

    def reconnecting(account: str | None, sig: str | None) -> tuple[LinkCheck, str | None]:
        """(check, address) of the account a re-consent link names; VALID without one."""
        if account is None and sig is None:
            return LinkCheck.VALID, None
        if account is None or not account.isdigit() or len(account) > 18:
            return LinkCheck.INVALID, None
        with factory() as session:
            row = session.get(Account, int(account))
            version = links_version(session, person_id=row.person_id) \
                if row is not None and row.person_id is not None else None
            email = row.email if row is not None else None
        if version is None:
            return LinkCheck.INVALID, None
        check = verify_link(key=key, purpose=RECONNECT, subjects=(int(account),), token=sig,
                            version=version, now=clock())
        return check, email if check is LinkCheck.VALID else None

    @router.get("/connect/{provider}", response_class=HTMLResponse)
    def consent(provider: str, account: str | None = None, sig: str | None = None) -> Response:
        if provider not in PROVIDER_NAMES:
            return _refused(provider, "unknown_provider", 404)
        if not signin.configured(settings, provider):
            return _refused(provider, "not_configured", 503)
        check, email = reconnecting(account, sig)
        if check is not LinkCheck.VALID:
            return _refused(provider, "link", 403)
        nonce = secrets.token_urlsafe(16)
        token = seal(key=key, purpose=SIGN_IN_FORM, payload={"n": nonce, "p": provider},
                     expires=clock() + FORM_LIFETIME)
        response = _page("connect.html", provider=provider,
                         provider_name=PROVIDER_NAMES[provider], token=token, email=email,
                         account=account if email else None, sig=sig if email else None)
        response.set_cookie(FORM_COOKIE, nonce, max_age=int(FORM_LIFETIME.total_seconds()),
                            path="/connect", httponly=True, samesite="lax", secure=secure)
        return response

    @router.post("/connect/{provider}")
    async def begin(provider: str, request: Request) -> Response:
        if provider not in PROVIDER_NAMES:
            return _refused(provider, "unknown_provider", 404)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _refused(provider, "form", 413)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        check, payload = unseal(key=key, purpose=SIGN_IN_FORM, token=form.get("token"),
                                now=clock())
        nonce = request.cookies.get(FORM_COOKIE, "")
        if check is not LinkCheck.VALID or payload is None or payload.get("p") != provider \
                or not hmac.compare_digest(str(payload.get("n", "")).encode(), nonce.encode()):
            log.info("sign-in form refused (%s): %s", provider, check.value)
            return _refused(provider, "form", 403)
        linked, email = await run_in_threadpool(reconnecting, form.get("account"),
                                                form.get("sig"))
        if linked is not LinkCheck.VALID:
            return _refused(provider, "form", 403)
        start = signin.start_google if provider == "google" else signin.start_microsoft
        try:
            started = await run_in_threadpool(start, settings, redirect_uri=redirect_uri(provider),
                                              login_hint=email)
        except signin.SignInFailed as err:
            log.warning("sign-in could not start (%s): %s", provider, err.reason)
            return _refused(provider, err.reason, 503)
        cookie = seal(key=key, purpose=SIGN_IN_FLOW,
                      payload={"p": provider, "s": started.state, "f": started.flow},
                      expires=clock() + FLOW_LIFETIME)
        response = RedirectResponse(started.url, status_code=303, headers=PAGE_HEADERS)
        response.set_cookie(FLOW_COOKIE, cookie, max_age=int(FLOW_LIFETIME.total_seconds()),
                            path="/connect", httponly=True, samesite="lax", secure=secure)
        response.delete_cookie(FORM_COOKIE, path="/connect")
        return response

    @router.get("/connect/{provider}/callback", response_class=HTMLResponse)
    def callback(provider: str, request: Request) -> Response:
        if provider not in PROVIDER_NAMES:
            return _refused(provider, "unknown_provider", 404)
        query = {k: v for k, v in request.query_params.items()}
        kept = request.cookies.get(FLOW_COOKIE)
        if not kept:
            return _refused(provider, "no_flow")
        check, payload = unseal(key=key, purpose=SIGN_IN_FLOW, token=kept, now=clock())
        if check is LinkCheck.EXPIRED:
            return _refused(provider, "expired")
        state = str((payload or {}).get("s", ""))
        if check is not LinkCheck.VALID or payload is None or payload.get("p") != provider \
                or not hmac.compare_digest(state.encode(), query.get("state", "").encode()):
            log.warning("sign-in callback refused (%s): state does not match", provider)
            return _refused(provider, "state")
        if query.get("error"):
            log.info("sign-in ended at the provider (%s): %s", provider, query["error"][:64])
            return _refused(provider, "denied" if query["error"] == "access_denied"
                            else "provider_error", 403 if query["error"] == "access_denied"
                            else 400)
        if not query.get("code"):
            return _refused(provider, "state")
        started = signin.Started(url="", state=state, flow=dict(payload.get("f") or {}))
        try:
            with factory.begin() as session:
                if provider == "google":
                    done = signin.finish_google(session, settings=settings, vault=vault,
                                                redirect_uri=redirect_uri(provider),
                                                started=started, code=query["code"])
                else:
                    done = signin.finish_microsoft(session, settings=settings, vault=vault,
                                                   started=started, response=query)
        except signin.SignInFailed as err:
            log.warning("sign-in failed (%s): %s", provider, err)
            return _refused(provider, err.reason)
        on_connected(done.account_id)
        response = _page("connected.html", provider_name=PROVIDER_NAMES[provider],
                         email=done.email, calendars=done.calendars,
                         horizon=settings.agenda_horizon_days)
        response.delete_cookie(FLOW_COOKIE, path="/connect")
        return response

    return router
