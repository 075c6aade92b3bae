"""Outgoing HTTPS trust: one bundle for every client, never verification off."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from service.settings import Settings
from service.tls import CABundleMissing, outgoing_ca_bundle


def test_rapport_ca_bundle_wins_over_the_standard_variables(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.pem", tmp_path / "theirs.pem"
    ours.write_text("x")
    theirs.write_text("y")
    settings = Settings(data_dir=tmp_path, ca_bundle=ours)
    assert outgoing_ca_bundle(settings, {"REQUESTS_CA_BUNDLE": str(theirs)}) == str(ours)


def test_requests_ca_bundle_then_ssl_cert_file_are_honoured(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pem", tmp_path / "b.pem"
    first.write_text("x")
    second.write_text("y")
    settings = Settings(data_dir=tmp_path)
    env = {"REQUESTS_CA_BUNDLE": str(first), "SSL_CERT_FILE": str(second)}
    assert outgoing_ca_bundle(settings, env) == str(first)
    assert outgoing_ca_bundle(settings, {"SSL_CERT_FILE": str(second)}) == str(second)


def test_without_configuration_the_system_trust_store_is_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "system.pem"
    system.write_text("z")
    # OpenSSL's own default bundle is its SSL_CERT_FILE of the process: that is what
    # `ssl.get_default_verify_paths()` reports as the system store (the settings see none).
    monkeypatch.setenv("SSL_CERT_FILE", str(system))
    assert ssl.get_default_verify_paths().cafile == str(system)
    assert outgoing_ca_bundle(Settings(data_dir=tmp_path), {}) == str(system)


def test_a_system_without_a_bundle_file_leaves_the_library_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = str(tmp_path / "gone.pem")
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: ssl.DefaultVerifyPaths(
        gone, str(tmp_path), "SSL_CERT_FILE", gone, "SSL_CERT_DIR", str(tmp_path)))
    assert outgoing_ca_bundle(Settings(data_dir=tmp_path), {}) is None


def test_a_missing_bundle_file_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, ca_bundle=tmp_path / "nope.pem")
    with pytest.raises(CABundleMissing, match="RAPPORT_CA_BUNDLE"):
        outgoing_ca_bundle(settings, {})
