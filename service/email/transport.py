"""Getting a built email out of the process: SMTP in production, `.eml` files by default.

`build_message` turns an outbox row into a MIME message; a `Transport` only sends it.
Neither logs a body or a password: INFO lines carry the recipient's domain and the Message-ID.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import tempfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, getaddresses
from pathlib import Path
from typing import Protocol

from service.config_values import parse_smtp_url
from service.email.models import OutboxMessage
from service.files import ensure_private_dir
from service.settings import Settings

log = logging.getLogger(__name__)

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


class TransportError(Exception):
    """Sending failed; `permanent` means retrying cannot help (e.g. 5xx on every recipient)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class HeaderPolicy(EmailPolicy):
    """`policy.default`, except that a header never folds right after its colon.

    Python's folder moves an ASCII value that fits a 78-character line of its own onto a
    continuation line ("Subject:\n Your 1:1s ..."), and readers then show the subject with
    a leading space. Joining that first fold back gives a line under 998 characters, which
    RFC 5322 (2.1.1) allows; every other fold is kept.
    """

    def fold(self, name: str, value: str) -> str:
        text = super().fold(name, value)
        broken = f"{name}:{self.linesep} "
        return f"{name}: {text[len(broken):]}" if text.startswith(broken) else text

    def fold_binary(self, name: str, value: str) -> bytes:
        data = super().fold_binary(name, value)
        broken = f"{name}:{self.linesep} ".encode("ascii")
        return b"%s: %s" % (name.encode("ascii"), data[len(broken):]) \
            if data.startswith(broken) else data


HEADER_POLICY = HeaderPolicy()

class Transport(Protocol):
    """Anything that can hand one email on; raises `TransportError` when it could not."""

    def send(self, msg: EmailMessage) -> None: ...


def address_domain(address: str) -> str:
    """The domain of an address, which is what logs may show of a recipient."""
    return address.rpartition("@")[2].strip(" >").lower() or "?"


def build_message(
    row: OutboxMessage,
    *,
    sender: str,
    date: datetime | None = None,
    unsubscribe_url: str | None = None,
) -> EmailMessage:
    """multipart/alternative (text, then the preferred HTML) with the row's stable Message-ID."""
    msg = EmailMessage(policy=HEADER_POLICY)
    msg["From"] = sender
    msg["To"] = row.recipient
    if row.cc:
        msg["Cc"] = row.cc
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = row.message_id
    # RFC 3834: tells autoresponders (out-of-office) not to answer a machine.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    msg.set_content(row.body_text)
    msg.add_alternative(row.body_html, subtype="html")
    return msg


class SmtpTransport:
    """One SMTP session per message: STARTTLS when offered (or required), implicit TLS for smtps."""

    def __init__(self, url: str, *, cafile: Path | str | None = None) -> None:
        self._config = parse_smtp_url(url)
        self._cafile = str(cafile) if cafile else None

    def __repr__(self) -> str:
        return f"SmtpTransport({self._config!r})"

    def _ssl_context(self) -> ssl.SSLContext:
        """System trust store, or the operator's CA bundle (RAPPORT_CA_BUNDLE) instead."""
        return ssl.create_default_context(cafile=self._cafile)

    def send(self, msg: EmailMessage) -> None:
        """Send `msg` to its To and Cc; SMTP and network errors become `TransportError`."""
        cfg = self._config
        try:
            if cfg.implicit_tls:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=self._ssl_context()
                )
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            with smtp:
                smtp.ehlo()
                encrypted = cfg.implicit_tls
                if not encrypted and cfg.starttls != "never":
                    if smtp.has_extn("starttls"):
                        smtp.starttls(context=self._ssl_context())
                        smtp.ehlo()
                        encrypted = True
                    elif cfg.starttls == "require":
                        raise TransportError("SMTP server does not offer STARTTLS (required)")
                if cfg.username:
                    if not encrypted and cfg.starttls != "never":
                        raise TransportError(
                            "refusing to send SMTP credentials unencrypted; "
                            "add ?starttls=never to allow it"
                        )
                    smtp.login(cfg.username, cfg.password or "")
                refused = smtp.send_message(msg)
        except TransportError:
            raise
        except smtplib.SMTPRecipientsRefused as err:
            codes = [code for code, _ in err.recipients.values()]
            raise TransportError(
                f"all recipients refused (codes {sorted(set(codes))})",
                permanent=all(code >= 500 for code in codes),
            ) from err
        except smtplib.SMTPResponseException as err:
            reply = (
                err.smtp_error.decode("utf-8", "replace")
                if isinstance(err.smtp_error, bytes)
                else str(err.smtp_error)
            )
            raise TransportError(
                f"{type(err).__name__}: {err.smtp_code} {reply[:200]}",
                permanent=isinstance(err, smtplib.SMTPDataError) and err.smtp_code >= 500,
            ) from err
        except (smtplib.SMTPException, OSError) as err:  # ssl.SSLError and timeouts are OSError
            raise TransportError(f"{type(err).__name__}: {str(err)[:200]}") from err
        if refused:
            log.warning(
                "SMTP refused some recipients of %s: domains %s",
                msg["Message-ID"],
                sorted({address_domain(a) for a in refused}),
            )
        log.info(
            "sent %s via SMTP %s:%s to domain(s) %s",
            msg["Message-ID"],
            cfg.host,
            cfg.port,
            sorted({address_domain(a) for _, a in getaddresses(msg.get_all("To", []))}),
        )


class OutboxDirTransport:
    """Writes each message to `<folder>/<timestamp>-<message-key>.eml`, atomically, mode 0600."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"OutboxDirTransport({str(self.folder)!r})"

    def send(self, msg: EmailMessage) -> None:
        """Write the message so a reader never sees half a file (temp file, fsync, rename)."""
        local_part = str(msg["Message-ID"] or "message").strip("<>").partition("@")[0]
        safe = _UNSAFE_FILENAME.sub("-", local_part).strip(".-")[:120] or "message"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.folder / f"{stamp}-{safe}.eml"
        try:
            ensure_private_dir(self.folder)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".eml", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(msg.as_bytes())
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as err:
            raise TransportError(f"cannot write to the outbox folder: {err}") from err
        log.info("wrote %s to %s", msg["Message-ID"], target.name)


def transport_from_settings(settings: Settings) -> Transport:
    """SMTP when `RAPPORT_SMTP_URL` is set, otherwise `.eml` files in the outbox folder."""
    if settings.smtp_url is not None and settings.smtp_url.get_secret_value():
        return SmtpTransport(settings.smtp_url.get_secret_value(), cafile=settings.ca_bundle)
    return OutboxDirTransport(settings.resolved_outbox_dir)
