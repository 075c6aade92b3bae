"""What `rapport connect microsoft-tenant` refuses before it asks Microsoft anything: one
line each, naming the file or the value, never the secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from sandbox.microsoft.tenants import certificate_pem, new_certificate
from service.calendars.microsoft_tenant import (
    checked_tenant,
    read_certificate,
    read_client_secret,
)
from service.calendars.onboarding import CredentialsFileError


@pytest.fixture(scope="module")
def pem() -> str:
    key, cert = new_certificate("rapport-test")
    return certificate_pem(key, cert)


def _split(pem: str) -> tuple[str, str]:
    at = pem.index("-----BEGIN CERTIFICATE")
    return pem[:at], pem[at:]


def _refusal(call: object, *args: object) -> str:
    with pytest.raises(CredentialsFileError) as caught:
        call(*args)  # type: ignore[operator]
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_pem_with_key_and_certificate_is_read_with_its_thumbprint(tmp_path: Path,
                                                                    pem: str) -> None:
    path = tmp_path / "app.pem"
    path.write_text(pem)
    stored = read_certificate(path)
    assert stored["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert stored["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert len(stored["thumbprint"]) == 40  # SHA-1, as the admin center shows it


def test_a_pem_without_a_private_key_or_without_a_certificate_is_refused(
        tmp_path: Path, pem: str) -> None:
    key, cert = _split(pem)
    (tmp_path / "cert.pem").write_text(cert)
    (tmp_path / "key.pem").write_text(key)
    assert "holds no private key" in _refusal(read_certificate, tmp_path / "cert.pem")
    assert "holds no certificate" in _refusal(read_certificate, tmp_path / "key.pem")
    assert "no such file" in _refusal(read_certificate, tmp_path / "missing.pem")


def test_a_key_of_another_certificate_or_an_encrypted_key_is_refused(tmp_path: Path,
                                                                      pem: str) -> None:
    other_key, _ = _split(certificate_pem(*new_certificate("other")))
    (tmp_path / "mixed.pem").write_text(other_key + _split(pem)[1])
    assert "does not belong" in _refusal(read_certificate, tmp_path / "mixed.pem")
    key, cert = new_certificate("locked")
    locked = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.BestAvailableEncryption(b"pass")).decode()
    (tmp_path / "locked.pem").write_text(locked + _split(pem)[1])
    assert "encrypted" in _refusal(read_certificate, tmp_path / "locked.pem")


def test_a_secret_file_must_hold_the_value_alone(tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("abc~secret-value\n")
    assert read_client_secret(path) == {"client_secret": "abc~secret-value"}
    path.write_text("Value: abc~secret-value\nSecret ID: 1234\n")
    message = _refusal(read_client_secret, path)
    assert "one line" in message and "abc~secret-value" not in message
    path.write_bytes(b"\xff\xfe\x00")
    assert "cannot be read" in _refusal(read_client_secret, path)


@pytest.mark.parametrize("tenant", ["common", "organizations", "not a tenant", "contoso"])
def test_a_tenant_must_name_one_organisation(tenant: str) -> None:
    assert "--tenant" in _refusal(checked_tenant, tenant)


def test_a_tenant_id_or_domain_is_accepted() -> None:
    assert checked_tenant("6F1C8E52-3B7A-4D0E-9A41-2C5D7E8F9A10") == \
        "6f1c8e52-3b7a-4d0e-9a41-2c5d7e8f9a10"
    assert checked_tenant("contoso.onmicrosoft.com") == "contoso.onmicrosoft.com"
