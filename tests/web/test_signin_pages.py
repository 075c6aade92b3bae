"""The sign-in pages' refusals that need no provider: an unknown provider, a provider that
is not set up, a consent URL that oauthlib would refuse, and the headers every page carries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from application.web.signin import signin_router
from service.settings import Settings
from tests.metrics.conftest import factory, settings  # noqa: F401

NOW = datetime(2026, 3, 23, 12, tzinfo=UTC)


def _client(settings: Settings, factory: sessionmaker[Session]) -> TestClient:  # noqa: F811
    app = FastAPI()
    app.include_router(signin_router(settings, factory, clock=lambda: NOW))
    return TestClient(app)


def test_unknown_and_unconfigured_providers_get_a_page_not_a_traceback(
        settings: Settings, factory: sessionmaker[Session]) -> None:  # noqa: F811
    client = _client(settings, factory)
    unknown = client.get("/connect/caldav")
    assert unknown.status_code == 404 and "Google and Microsoft 365" in unknown.text
    for provider in ("google", "microsoft"):
        page = client.get(f"/connect/{provider}")
        assert page.status_code == 503 and "not finished setting it up" in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("query", ["?account=1&sig=1.0.x", "?account=x&sig=1", "?sig=1"])
def test_a_bad_reconnect_link_is_refused(settings: Settings, factory: sessionmaker[Session],  # noqa: F811
                                         query: str) -> None:
    settings.google_client_id, settings.google_client_secret = "id", "secret"
    page = _client(settings, factory).get(f"/connect/google{query}")
    assert page.status_code == 403 and "no longer works" in page.text


def test_a_plain_http_consent_url_is_a_setup_problem(settings: Settings,  # noqa: F811
                                                     factory: sessionmaker[Session]) -> None:  # noqa: F811
    settings.google_client_id, settings.google_client_secret = "id", "secret"
    settings.google_auth_url = "http://accounts.example/auth"
    client = _client(settings, factory)
    consent = client.get("/connect/google")
    assert consent.status_code == 200 and 'name="token"' in consent.text
    token = consent.text.split('name="token" value="')[1].split('"')[0]
    started = client.post("/connect/google", data={"token": token}, follow_redirects=False)
    assert started.status_code == 503 and "not finished setting it up" in started.text
