"""Signed page links expire, can be withdrawn per person, and are signed with their own key:
checked over HTTP against the served app, the withdrawal through the real command line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from application.web.app import create_app
from service.accounts.crypto import load_or_create_key
from service.accounts.signing import (
    MANAGER_PAGE,
    LinkCheck,
    link_key,
    manager_url,
    sign_link,
    verify_link,
)
from service.settings import Settings
from tests.metrics.conftest import History, factory, history, utc  # noqa: F401

NOW = utc(2026, 3, 23, 12)
_SCRIPT = Path(sys.executable).parent / "rapport"
RAPPORT = [str(_SCRIPT)] if _SCRIPT.exists() else \
    [sys.executable, "-c", "from application.cli.main import main; main()"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """No RAPPORT_WEB_SECRET: the link key is derived from the encryption key."""
    return Settings(data_dir=tmp_path, secret_key=SecretStr(Fernet.generate_key().decode()),
                    link_ttl_days=30)


@pytest.fixture
def manager(history: History) -> int:  # noqa: F811
    boss = history.person("maya@example.com", name="Maya Chen")
    report = history.person("sam@example.com", name="Sam Ortiz")
    pair = history.pair(boss, report)
    series = history.series(pair, key="series-0")
    history.occurrences(series, utc(2026, 1, 5, 9), ["held"] * 8 + [None])
    return boss


class Clock:
    """The time the served app sees; the test moves it."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(factory: sessionmaker[Session], settings: Settings,  # noqa: F811
           clock: Clock) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    uv = uvicorn.Server(uvicorn.Config(create_app(settings, factory, clock=clock),
                                       host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)


def test_a_fresh_link_opens_the_page_and_an_expired_one_gets_a_clear_refusal(
        server: str, settings: Settings, manager: int, clock: Clock) -> None:
    url = manager_url(settings, manager, version=0, now=NOW, base_url=server)
    assert httpx.get(url).status_code == 200
    clock.now = NOW + timedelta(days=30, seconds=1)
    expired = httpx.get(url)
    assert expired.status_code == 403
    assert expired.headers["content-type"].startswith("text/html")
    assert "This link has expired" in expired.text


def test_revoking_links_refuses_the_old_link_and_a_new_link_works(
        server: str, settings: Settings, manager: int, tmp_path: Path) -> None:
    old = manager_url(settings, manager, version=0, now=NOW, base_url=server)
    assert httpx.get(old).status_code == 200
    assert settings.secret_key is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env.update(RAPPORT_DATA_DIR=str(tmp_path),
               RAPPORT_SECRET_KEY=settings.secret_key.get_secret_value())
    done = subprocess.run([*RAPPORT, "people", "revoke-links", "maya@example.com"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "no longer opens" in done.stdout
    refused = httpx.get(old)
    assert refused.status_code == 403 and "This link was withdrawn" in refused.text
    fresh = manager_url(settings, manager, version=1, now=NOW, base_url=server)
    assert httpx.get(fresh).status_code == 200
    unknown = subprocess.run([*RAPPORT, "people", "revoke-links", "nobody@example.com"],
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    assert unknown.returncode != 0 and "nobody@example.com" in unknown.stderr + unknown.stdout


def test_a_tampered_link_is_refused(server: str, settings: Settings, manager: int) -> None:
    url = manager_url(settings, manager, version=0, now=NOW, base_url=server)
    token = parse_qs(urlsplit(url).query)["sig"][0]
    expires, version, mac = token.split(".")
    later = str(int(expires) + 365 * 86400)
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for forged in (f"{later}.{version}.{mac}", f"{expires}.{version}.{flipped}",
                   f"{expires}.7.{mac}", f"0{expires}.{version}.{mac}", mac, ""):
        answer = httpx.get(f"{server}/managers/{manager}", params={"sig": forged})
        assert answer.status_code == 403, forged
        assert "This link is not valid" in answer.text
    other = httpx.get(f"{server}/managers/{manager + 1}", params={"sig": token})
    assert other.status_code == 403


def test_links_are_signed_with_a_key_derived_from_not_equal_to_the_fernet_key(
        settings: Settings) -> None:
    fernet_key = load_or_create_key(settings)
    key = link_key(settings)
    assert key != fernet_key and key not in fernet_key
    with_fernet = sign_link(key=fernet_key, purpose=MANAGER_PAGE, subjects=(1,),
                            expires=NOW + timedelta(days=1), version=0)
    assert verify_link(key=key, purpose=MANAGER_PAGE, subjects=(1,), token=with_fernet,
                       version=0, now=NOW) is LinkCheck.INVALID
    explicit = Settings(data_dir=settings.data_dir, secret_key=settings.secret_key,
                        web_secret=SecretStr("operator-chosen"))
    assert link_key(explicit) == b"operator-chosen"


def test_a_link_for_one_purpose_does_not_open_another(settings: Settings) -> None:
    key = link_key(settings)
    token = sign_link(key=key, purpose="shared-agenda", subjects=(3, 4),
                      expires=NOW + timedelta(days=1), version=2)
    assert verify_link(key=key, purpose="shared-agenda", subjects=(3, 4), token=token,
                       version=2, now=NOW) is LinkCheck.VALID
    assert verify_link(key=key, purpose=MANAGER_PAGE, subjects=(3, 4), token=token,
                       version=2, now=NOW) is LinkCheck.INVALID
    assert verify_link(key=key, purpose="shared-agenda", subjects=(3,), token=token,
                       version=2, now=NOW) is LinkCheck.INVALID
