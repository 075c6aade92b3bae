"""Sign-in on the web, end to end: `rapport run`'s HTTP server, headless Chromium (Playwright),
google-auth-oauthlib and MSAL over HTTPS to the sandboxes' consent screens and token
endpoints, a real database and the real actors. Nothing of ours is faked."""

from __future__ import annotations

import email
import email.policy
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import func, select

from application.context import start
from application.web.server import serve_in_thread
from sandbox.google import GoogleSandbox
from sandbox.microsoft import GraphSandbox
from service.accounts.models import Account, AccountStatus
from service.calendars.models import Calendar
from service.email.models import OutboxMessage
from service.settings import Settings
from tests.browser import ARTIFACTS, launch, require_chromium
from tests.e2e.conftest import Clock, _fresh_postgres
from workers import actors
from workers.inprocess import run_until_idle
from workers.runtime import Runtime

pytestmark = pytest.mark.browser

GOOGLE_CLIENT, GOOGLE_SECRET = "rapport-web.apps.sandbox", "web-secret"
MICROSOFT_CLIENT = "7d1c-rapport-web"
MAYA, DANA = "maya@acme.test", "dana@acme.test"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def google_tls() -> Iterator[GoogleSandbox]:
    """The Google sandbox over HTTPS: google-auth-oauthlib refuses plain-HTTP endpoints."""
    sandbox = GoogleSandbox(tls=True).start()
    yield sandbox
    sandbox.stop()


@dataclass
class Site:
    """Rapport running with its web server, and the sandboxes it signs people in with."""

    base: str
    runtime: Runtime
    broker: dramatiq.Broker
    google: GoogleSandbox
    graph: GraphSandbox
    clock: Clock

    def run(self) -> None:
        run_until_idle(self.broker, threads=2, timeout=120)

    def accounts(self) -> list[Account]:
        with self.runtime.factory() as session:
            return list(session.scalars(select(Account).order_by(Account.id)))

    def reconsent_rows(self) -> int:
        with self.runtime.factory() as session:
            return session.scalar(select(func.count()).select_from(OutboxMessage)
                                  .where(OutboxMessage.kind == "reconsent")) or 0


@pytest.fixture
def site(tmp_path: Path, google_tls: GoogleSandbox, graph_sandbox: GraphSandbox
         ) -> Iterator[Site]:
    require_chromium()
    google_tls.reset()
    database_url = os.environ.get("RAPPORT_TEST_DATABASE_URL")
    if database_url:
        _fresh_postgres(database_url)
    broker_url = os.environ.get("RAPPORT_TEST_BROKER_URL")
    bundle = tmp_path / "sandbox-cas.pem"  # one bundle trusts both sandboxes
    bundle.write_text(Path(str(google_tls.ca_file)).read_text()
                      + Path(graph_sandbox.ca_file).read_text())
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    google_tls.register_client(GOOGLE_CLIENT, client_secret=GOOGLE_SECRET,
                               redirect_uris=[f"{base}/connect/google/callback"])
    graph_sandbox.register_client(MICROSOFT_CLIENT,
                                  redirect_uris=[f"{base}/connect/microsoft/callback"])
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, broker_url=broker_url,
        secret_key=SecretStr(Fernet.generate_key().decode()),
        google_api_url=google_tls.base_url, google_token_url=google_tls.token_url,
        google_auth_url=google_tls.auth_url, google_client_id=GOOGLE_CLIENT,
        google_client_secret=SecretStr(GOOGLE_SECRET),
        graph_api_url=graph_sandbox.base_url, microsoft_authority=graph_sandbox.token_url,
        microsoft_client_id=MICROSOFT_CLIENT, ca_bundle=bundle,
        public_url=base, http_port=port)
    clock = Clock()
    started = start(settings, clock=clock)
    if broker_url:
        started.broker.flush_all()
    server = serve_in_thread(started.runtime)
    yield Site(base, started.runtime, started.broker, google_tls, graph_sandbox, clock)
    server.should_exit = True
    if broker_url:
        started.broker.flush_all()
        started.broker.close()
    started.runtime.engine.dispose()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch(p)
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Any, viewport: dict[str, int] = DESKTOP) -> Any:
    # the sandboxes' certificates come from a throwaway CA the browser does not know
    return browser.new_context(viewport=viewport, ignore_https_errors=True).new_page()


def _to_consent_screen(page: Any, url: str) -> None:
    """Open Rapport's consent page and press its button: the provider's screen follows."""
    response = page.goto(url)
    assert response is not None and response.status == 200
    page.click("#continue")
    page.wait_for_selector("#allow")


def _answer(page: Any, button: str) -> int:
    """Press a button on the provider's screen; the status of Rapport's callback page."""
    with page.expect_response(re.compile(r"/callback\?")) as answer:
        page.click(button)
    return int(answer.value.status)


def _refused(site: Site, page: Any, heading: str) -> None:
    assert heading in page.inner_text("h1")
    assert site.accounts() == []


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("provider,email", [("google", MAYA), ("microsoft", DANA)])
def test_signing_in_on_the_web_connects_the_account_and_it_syncs(
        site: Site, browser: Any, provider: str, email: str) -> None:
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page = _page(browser, viewport)
        page.goto(f"{site.base}/connect/{provider}")
        assert "What Rapport never does" in page.inner_text("main")
        _shot(page, f"signin-{provider}-consent-{name}")
    page = _page(browser, DESKTOP)
    _to_consent_screen(page, f"{site.base}/connect/{provider}")
    assert page.url.startswith("https://127.0.0.1")
    assert "code_challenge_method=S256" in page.url and "state=" in page.url
    page.select_option("#user", email)
    assert _answer(page, "#allow") == 200
    assert page.inner_text("#email") == email
    assert int(page.inner_text("#calendars")) >= 1
    callback = page.url
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(viewport)
        _shot(page, f"signin-{provider}-result-{name}")

    [account] = site.accounts()
    assert (account.provider, account.email, account.status) == \
        (provider, email, AccountStatus.ACTIVE)
    site.run()  # the first sync the callback asked for
    with site.runtime.factory() as session:
        synced = session.scalars(select(Calendar).where(Calendar.account_id == account.id))
        assert all(c.last_sync_at is not None and c.last_error is None for c in synced)

    replay = page.goto(callback)  # the same answer again: the flow is over
    assert replay is not None and replay.status == 400
    assert "already over" in page.inner_text("h1")
    assert len(site.accounts()) == 1


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_denied_consent_stores_nothing(site: Site, browser: Any, provider: str) -> None:
    page = _page(browser)
    _to_consent_screen(page, f"{site.base}/connect/{provider}")
    assert _answer(page, "#deny") == 403
    _refused(site, page, "Nothing was connected")
    _shot(page, f"signin-{provider}-denied-desktop")


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_a_forged_state_is_refused_and_stores_nothing(site: Site, browser: Any,
                                                      provider: str) -> None:
    page = _page(browser)
    _to_consent_screen(page, f"{site.base}/connect/{provider}")
    # an attacker's own answer (their code, their state) opened in this browser
    forged = page.goto(f"{site.base}/connect/{provider}/callback"
                       "?code=sandbox-code-attacker&state=attackers-state")
    assert forged is not None and forged.status == 400
    _refused(site, page, "could not be verified")


def test_a_flow_left_for_too_long_expires(site: Site, browser: Any) -> None:
    page = _page(browser)
    _to_consent_screen(page, f"{site.base}/connect/google")
    site.clock.now += timedelta(minutes=11)
    assert _answer(page, "#allow") == 400
    _refused(site, page, "took too long")


def test_a_token_endpoint_error_is_a_clear_page(site: Site, browser: Any) -> None:
    site.google.register_client(GOOGLE_CLIENT, client_secret="rotated-in-the-console",
                                redirect_uris=[f"{site.base}/connect/google/callback"])
    page = _page(browser)
    _to_consent_screen(page, f"{site.base}/connect/google")
    assert _answer(page, "#allow") == 400
    _refused(site, page, "did not let the sign-in finish")


def test_the_consent_button_needs_the_pages_own_token(site: Site, browser: Any) -> None:
    page = _page(browser)
    page.goto(f"{site.base}/connect/google")
    # a form posted from elsewhere carries no form cookie and no valid token
    answer = page.request.post(f"{site.base}/connect/google", form={"token": "1.x.y"},
                               max_redirects=0)
    assert answer.status == 403
    assert site.accounts() == []


def test_a_revoked_grant_sends_one_email_and_the_web_reconnects_it(site: Site,
                                                                   browser: Any) -> None:
    page = _page(browser)
    _to_consent_screen(page, f"{site.base}/connect/google")
    page.select_option("#user", MAYA)
    page.click("#allow")
    page.wait_for_selector("#email")
    site.run()
    [account] = site.accounts()

    site.google.runtime.revoke(MAYA)
    for _ in range(2):  # two failing syncs, two reconciler passes: still one email
        actors.sync_all_accounts()
        site.run()
        actors.reconcile.send()
        site.run()
    [flagged] = site.accounts()
    assert flagged.status == AccountStatus.NEEDS_RECONSENT
    assert site.reconsent_rows() == 1
    sent = [email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
            for eml in site.runtime.settings.resolved_outbox_dir.glob("*.eml")]
    # the outbox also holds Maya's prep nudges for her 1:1s: one re-consent email among them
    [message] = [m for m in sent if "can no longer see your" in m["Subject"]]
    assert message["To"] == MAYA
    text = message.get_body(("plain",)).get_content()
    link = re.search(r"(http://\S+/connect/google\?account=\d+&sig=\S+)", text)
    assert link is not None, text
    url = link.group(1)

    page = _page(browser, PHONE)
    page.set_content(message.get_body(("html",)).get_content())
    _shot(page, "signin-reconsent-email-phone")
    page = _page(browser)
    page.goto(url)
    assert MAYA in page.inner_text(".note")
    _shot(page, "signin-reconnect-consent-desktop")
    page.click("#continue")
    page.wait_for_selector("#allow")
    assert page.input_value("#user") == MAYA  # the link's account is the login hint
    page.click("#allow")
    assert page.inner_text("#email") == MAYA
    [again] = site.accounts()
    assert (again.id, again.status) == (account.id, AccountStatus.ACTIVE)
    site.run()
    actors.sync_all_accounts()
    site.run()
    assert site.accounts()[0].status == AccountStatus.ACTIVE
    actors.reconcile.send()
    site.run()
    assert site.reconsent_rows() == 1  # reconnected: nothing more to say

    site.google.runtime.revoke(MAYA)  # a later revocation is a new episode: one more email
    actors.sync_all_accounts()
    site.run()
    actors.reconcile.send()
    site.run()
    assert site.reconsent_rows() == 2

    tampered = page.goto(url.replace("sig=", "sig=9"))
    assert tampered is not None and tampered.status == 403
    assert "no longer works" in page.inner_text("h1")
