"""Fixtures for the email tests: a migrated SQLite file and real aiosmtpd servers."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from sqlalchemy.orm import Session, sessionmaker

from tests.postgres import migrated

SMTP_USER = "rapport"
SMTP_PASSWORD = "s3cr3t-p4ss"


@dataclass
class Received:
    """One message as the SMTP server got it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Collector:
    """aiosmtpd handler that keeps every message and can refuse chosen recipients."""

    messages: list[Received] = field(default_factory=list)
    refuse_domain: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd hook name)
        self, server: Any, session: Any, envelope: Envelope, address: str, rcpt_options: Any
    ) -> str:
        if self.refuse_domain and address.endswith("@" + self.refuse_domain):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        msg = message_from_bytes(raw, policy=policy.default)
        with self.lock:
            self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh database (SQLite file, or PostgreSQL), migrated like production."""
    with migrated(request.param, tmp_path, "email") as made:
        yield made


@dataclass
class SmtpServer:
    collector: Collector
    host: str
    port: int
    cafile: Path | None = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server on 127.0.0.1 without TLS or auth."""
    collector = Collector()
    port = _free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(collector, "127.0.0.1", port)
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    """A throwaway CA, its PEM file, and a certificate for 127.0.0.1."""
    ca = trustme.CA()
    cafile = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    return ca, cafile


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


@pytest.fixture
def starttls_server(tls_ca: tuple[trustme.CA, Path]) -> Iterator[SmtpServer]:
    """An SMTP server that requires STARTTLS before AUTH, and AUTH before mail."""
    ca, cafile = tls_ca
    collector = Collector()
    port = _free_port()
    controller = Controller(
        collector,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_context(ca),
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
        authenticator=_authenticator,
    )
    controller.start()
    try:
        yield SmtpServer(collector, "127.0.0.1", port, cafile)
    finally:
        controller.stop()


@pytest.fixture
def smtps_server(tls_ca: tuple[trustme.CA, Path]) -> Iterator[SmtpServer]:
    """An SMTP server with implicit TLS (smtps) and required AUTH."""
    ca, cafile = tls_ca
    collector = Collector()
    port = _free_port()
    controller = Controller(
        collector,
        hostname="127.0.0.1",
        port=port,
        ssl_context=_server_context(ca),
        auth_required=True,
        auth_require_tls=False,  # aiosmtpd only counts STARTTLS as TLS, not implicit TLS
        authenticator=_authenticator,
    )
    controller.start()
    try:
        yield SmtpServer(collector, "127.0.0.1", port, cafile)
    finally:
        controller.stop()
