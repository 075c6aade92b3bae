"""Sealed payloads (the web sign-in's flow cookie and form token) cannot be changed, moved
to another purpose or used past their expiry; re-consent links follow the link rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.accounts.signing import (
    RECONNECT,
    SIGN_IN_FLOW,
    SIGN_IN_FORM,
    LinkCheck,
    seal,
    unseal,
    verify_link,
)

KEY = b"k" * 32
NOW = datetime(2026, 3, 23, 12, tzinfo=UTC)
PAYLOAD = {"p": "google", "s": "state-1", "f": {"code_verifier": "v" * 64}}


def _sealed(**changes: object) -> str:
    arguments: dict = {"key": KEY, "purpose": SIGN_IN_FLOW, "payload": PAYLOAD,
                       "expires": NOW + timedelta(minutes=10)}
    arguments.update(changes)
    return seal(**arguments)


def test_a_sealed_payload_opens_until_its_expiry() -> None:
    token = _sealed()
    assert unseal(key=KEY, purpose=SIGN_IN_FLOW, token=token, now=NOW) == (LinkCheck.VALID,
                                                                           PAYLOAD)
    assert unseal(key=KEY, purpose=SIGN_IN_FLOW, token=token,
                  now=NOW + timedelta(minutes=10)) == (LinkCheck.EXPIRED, None)


def test_a_changed_payload_expiry_purpose_or_key_is_invalid() -> None:
    token = _sealed()
    expires, body, mac = token.split(".")
    other_body = _sealed(payload={**PAYLOAD, "s": "attacker"}).split(".")[1]
    for forged in (f"{expires}.{other_body}.{mac}", f"{int(expires) + 60}.{body}.{mac}",
                   f"0{expires}.{body}.{mac}", f"{expires}.{body}.{mac[:-1]}", "", "a.b",
                   f"{expires}.{body}.{mac}é"):
        assert unseal(key=KEY, purpose=SIGN_IN_FLOW, token=forged, now=NOW) == \
            (LinkCheck.INVALID, None), forged
    assert unseal(key=KEY, purpose=SIGN_IN_FORM, token=token, now=NOW)[0] is LinkCheck.INVALID
    assert unseal(key=b"o" * 32, purpose=SIGN_IN_FLOW, token=token, now=NOW)[0] \
        is LinkCheck.INVALID


def test_a_sealed_token_is_no_reconnect_link() -> None:
    token = _sealed()
    assert verify_link(key=KEY, purpose=RECONNECT, subjects=(1,), token=token, version=0,
                       now=NOW) is LinkCheck.INVALID
