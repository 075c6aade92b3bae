"""Transports: SMTP with STARTTLS, implicit TLS and AUTH against a real server; .eml files."""

from __future__ import annotations

import logging
import re
import stat
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from conftest import SMTP_PASSWORD, SMTP_USER, SmtpServer
from sqlalchemy.orm import Session, sessionmaker

from service.email.models import OutboxMessage
from service.email.outbox import DeliveryOutcome, deliver, enqueue, make_message_id
from service.email.render import RenderedEmail
from service.email.transport import (
    OutboxDirTransport,
    SmtpTransport,
    TransportError,
    build_message,
    transport_from_settings,
)
from service.settings import Settings

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SENDER = "Rapport <rapport@example.org>"


def row(key: str = "digest:7:2026-W48", subject: str = "Your week in 1:1s") -> OutboxMessage:
    """An outbox row as `enqueue` would store it, without a database."""
    return OutboxMessage(
        id=1,
        kind="digest",
        dedupe_key=key,
        recipient="ann@example.com",
        cc=None,
        subject=subject,
        body_text="Secret body text\n",
        body_html="<p>Secret body html</p>",
        message_id=make_message_id(key),
    )


def authed_url(server: SmtpServer, scheme: str = "smtp", extra: str = "") -> str:
    return f"{scheme}://{SMTP_USER}:{SMTP_PASSWORD}@{server.host}:{server.port}?timeout=5{extra}"


def test_smtp_auth_over_starttls_delivers_with_the_operators_ca(
    starttls_server: SmtpServer,
) -> None:
    transport = SmtpTransport(authed_url(starttls_server), cafile=starttls_server.cafile)
    transport.send(build_message(row(), sender=SENDER))
    [got] = starttls_server.collector.messages
    assert got.message["Message-ID"] == make_message_id("digest:7:2026-W48")
    assert got.rcpt_tos == ["ann@example.com"]


def test_starttls_with_an_untrusted_certificate_is_a_transport_error(
    starttls_server: SmtpServer,
) -> None:
    transport = SmtpTransport(authed_url(starttls_server))  # system trust store only
    with pytest.raises(TransportError) as err:
        transport.send(build_message(row(), sender=SENDER))
    assert not err.value.permanent
    assert starttls_server.collector.messages == []


def test_a_wrong_smtp_password_is_a_transport_error_that_hides_the_password(
    starttls_server: SmtpServer,
) -> None:
    url = f"smtp://{SMTP_USER}:wrong-horse@{starttls_server.host}:{starttls_server.port}"
    transport = SmtpTransport(url, cafile=starttls_server.cafile)
    with pytest.raises(TransportError) as err:
        transport.send(build_message(row(), sender=SENDER))
    assert "535" in str(err.value)
    assert "wrong-horse" not in str(err.value)
    assert "wrong-horse" not in repr(transport)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtps_with_implicit_tls_and_auth_delivers(smtps_server: SmtpServer) -> None:
    transport = SmtpTransport(authed_url(smtps_server, "smtps"), cafile=smtps_server.cafile)
    transport.send(build_message(row(), sender=SENDER))
    assert len(smtps_server.collector.messages) == 1


def test_required_starttls_fails_when_the_server_does_not_offer_it(
    smtp_server: SmtpServer,
) -> None:
    url = f"smtp://{smtp_server.host}:{smtp_server.port}?starttls=require&timeout=5"
    with pytest.raises(TransportError, match="STARTTLS"):
        SmtpTransport(url).send(build_message(row(), sender=SENDER))
    assert smtp_server.collector.messages == []


def test_credentials_are_not_sent_in_clear_unless_the_url_says_so(
    smtp_server: SmtpServer,
) -> None:
    with pytest.raises(TransportError, match="unencrypted"):
        SmtpTransport(authed_url(smtp_server)).send(build_message(row(), sender=SENDER))
    assert smtp_server.collector.messages == []


def test_plain_smtp_without_credentials_delivers(smtp_server: SmtpServer) -> None:
    url = f"smtp://{smtp_server.host}:{smtp_server.port}?timeout=5"
    SmtpTransport(url).send(build_message(row(), sender=SENDER))
    assert len(smtp_server.collector.messages) == 1


@pytest.mark.parametrize("subject", [
    # 70 to 77 characters: the value fits a folded line of its own, which is where Python's
    # folder used to break right after "Subject:" (read back with a leading space)
    "Your 1:1s this week: 17 of 24 took place, 1 to look at (2026-W01 to 2026-W12)",
    "Your 1:1s over the last 12 weeks: 17 of 24 took place, 3 to look at now",
    "Your 1:1 with Lee Morgan on Tue 3 Dec, 10:00 (Europe/London) was cancelled: put it back?",
])
def test_a_subject_reads_back_over_smtp_and_from_the_eml_exactly_as_written(
    smtp_server: SmtpServer, tmp_path: Path, subject: str,
) -> None:
    message = build_message(row(subject=subject), sender=SENDER)
    SmtpTransport(f"smtp://{smtp_server.host}:{smtp_server.port}?timeout=5").send(message)
    OutboxDirTransport(tmp_path).send(message)
    [got] = smtp_server.collector.messages
    [path] = list(tmp_path.iterdir())
    from_file = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert got.message["Subject"] == subject
    assert from_file["Subject"] == subject


def test_an_unreachable_smtp_server_is_a_transient_transport_error(
    smtp_server: SmtpServer,
) -> None:
    url = f"smtp://{smtp_server.host}:1?timeout=2"
    with pytest.raises(TransportError) as err:
        SmtpTransport(url).send(build_message(row(), sender=SENDER))
    assert not err.value.permanent


def test_an_smtp_url_with_an_unknown_scheme_is_rejected() -> None:
    with pytest.raises(ValueError, match="smtp://"):
        SmtpTransport("http://mail.example.com")


def test_delivery_logs_neither_the_body_nor_the_smtp_password(
    factory: sessionmaker[Session],
    starttls_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rendered = RenderedEmail(subject="Hi", text="Secret body text\n", html="<p>Secret html</p>")
    with factory() as session:
        message_id = enqueue(
            session,
            kind="digest",
            dedupe_key="digest:1",
            recipient="ann@example.com",
            rendered=rendered,
        ).id
        session.commit()
    transport = SmtpTransport(authed_url(starttls_server), cafile=starttls_server.cafile)
    with caplog.at_level(logging.DEBUG):
        result = deliver(
            factory, message_id=message_id, transport=transport, now=NOW, sender=SENDER
        )
    assert result.outcome is DeliveryOutcome.SENT
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("service."))
    assert "example.com" in logged
    assert SMTP_PASSWORD not in logged
    assert "Secret" not in logged
    assert "ann@" not in logged


def test_build_message_encodes_a_non_ascii_subject_and_adds_list_unsubscribe() -> None:
    msg = build_message(
        row(subject="Zoë’s 1:1 — dropped"),
        sender=SENDER,
        date=NOW,
        unsubscribe_url="https://rapport.example.org/u/abc",
    )
    raw = msg.as_bytes()
    assert b"Zo\xc3\xab" not in raw.split(b"\n\n", 1)[0]  # headers stay 7-bit
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Zoë’s 1:1 — dropped"
    assert parsed["List-Unsubscribe"] == "<https://rapport.example.org/u/abc>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Date"].datetime == NOW


def test_outbox_dir_transport_writes_a_parseable_eml_file_atomically(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    OutboxDirTransport(folder).send(build_message(row(), sender=SENDER))
    [path] = list(folder.iterdir())  # no temp file left behind
    assert re.fullmatch(r"\d{8}T\d{12}Z-digest\.7\.2026-W48\.[0-9a-f]{16}\.eml", path.name)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["To"] == "ann@example.com"
    assert parsed["Message-ID"] == make_message_id("digest:7:2026-W48")
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert text is not None and "Secret body text" in text.get_content()
    assert html is not None and "Secret body html" in html.get_content()


def test_transport_from_settings_picks_smtp_only_when_a_url_is_set(tmp_path: Path) -> None:
    local = transport_from_settings(Settings(data_dir=tmp_path))
    assert isinstance(local, OutboxDirTransport)
    assert local.folder == tmp_path / "outbox"
    smtp = transport_from_settings(
        Settings(data_dir=tmp_path, smtp_url="smtp://u:hunter2@mail.example.com:587")  # type: ignore[arg-type]
    )
    assert isinstance(smtp, SmtpTransport)
    assert "hunter2" not in repr(smtp)
