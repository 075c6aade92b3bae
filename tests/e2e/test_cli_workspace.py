"""`rapport connect google-workspace` as an operator runs it: one line per refusal, the exit
codes of other commands, and a grant stored only when Google accepts it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from application.cli.main import app
from sandbox.google.company import ADMIN_EMAIL
from service.accounts.models import DirectoryGrant
from service.calendars.workspace import workspace_scopes

from .conftest import Harness
from .test_cli import _env, rapport


def _workspace_env(harness: Harness) -> dict[str, str]:
    env = _env(harness.settings.data_dir, harness)
    env["RAPPORT_GOOGLE_DIRECTORY_URL"] = harness.google.base_url.removesuffix("calendar/v3/")
    return env


def _key_file(harness: Harness, tmp_path: Path, scopes: tuple[str, ...]) -> Path:
    key = harness.google.mint_service_account_key()
    harness.google.authorise_delegation(key["client_id"], list(scopes))
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key))
    return path


def _grants(harness: Harness) -> int:
    with harness.session() as session:
        return session.scalar(select(func.count()).select_from(DirectoryGrant)) or 0


def test_a_key_file_that_is_not_a_service_account_key_is_one_line_and_exit_3(
        tmp_path: Path) -> None:
    path = tmp_path / "authorized_user.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "x",
                                "client_secret": "s3cret-value", "refresh_token": "r"}))

    process = rapport("connect", "google-workspace", "--service-account", str(path),
                      "--admin", ADMIN_EMAIL, env=_env(tmp_path))

    assert process.returncode == 3
    assert "Traceback" not in process.stdout + process.stderr
    [line] = process.stderr.strip().splitlines()
    assert "not a service-account key" in line and "authorized_user" in line
    assert "s3cret" not in process.stderr
    assert not (tmp_path / "rapport.db").exists()  # refused before anything was started


@pytest.mark.parametrize(("content", "says"), [
    ("{not json", "not valid JSON"),
    (json.dumps({"type": "service_account", "client_email": "a@b", "token_uri": "http://t"}),
     "lacks private_key"),
    (json.dumps({"type": "service_account", "client_email": "a@b", "token_uri": "http://t",
                 "private_key": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"}),
     "not a readable PEM private key"),
])
def test_a_broken_service_account_key_is_refused_in_one_line(
        tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "key.json"
    path.write_text(content)

    result = CliRunner().invoke(app, ["connect", "google-workspace", "--service-account",
                                      str(path), "--admin", ADMIN_EMAIL],
                                env=_env(tmp_path))

    assert result.exit_code == 3, result.output
    [line] = result.output.strip().splitlines()
    assert says in line
    assert not (tmp_path / "rapport.db").exists()


def test_scopes_not_authorised_are_one_line_naming_the_admin_console_step(
        harness: Harness, tmp_path: Path) -> None:
    directory_only = tuple(s for s in workspace_scopes(group=False) if "admin.directory" in s)
    path = _key_file(harness, tmp_path, directory_only)
    client_id = json.loads(path.read_text())["client_id"]

    process = rapport("connect", "google-workspace", "--service-account", str(path),
                      "--admin", ADMIN_EMAIL, env=_workspace_env(harness))

    assert process.returncode == 4, process.stderr
    assert "Traceback" not in process.stdout + process.stderr
    [line] = process.stderr.strip().splitlines()
    assert "API controls > Manage Domain Wide Delegation" in line
    assert client_id in line and "auth/calendar.events" in line
    assert _grants(harness) == 0


def test_connecting_the_workspace_says_what_was_granted_and_stores_it(
        harness: Harness, tmp_path: Path) -> None:
    path = _key_file(harness, tmp_path, workspace_scopes(group=True))
    harness.google.add_group("pilot@acme.test", ["maya@acme.test", "sam@acme.test"])

    result = CliRunner().invoke(app, ["connect", "google-workspace", "--service-account",
                                      str(path), "--admin", ADMIN_EMAIL,
                                      "--group", "pilot@acme.test"],
                                env=_workspace_env(harness))

    assert result.exit_code == 0, result.output
    assert "Connected Google Workspace acme.test" in result.output
    assert "members of pilot@acme.test" in result.output
    assert _grants(harness) == 1
    with harness.session() as session:
        grant = session.scalars(select(DirectoryGrant)).one()
        assert grant.scope == {"admin": ADMIN_EMAIL, "group": "pilot@acme.test"}
