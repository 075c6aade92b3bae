"""The deploy/ examples are safe to start as they are: no trust auth, no open Redis, every
password from an env file that is not committed."""

from __future__ import annotations

import re
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = (DEPLOY / "docker-compose.yml").read_text(encoding="utf-8")
REQUIRED = re.compile(r"\$\{([A-Z_]+):\?[^}]+\}")


def test_compose_has_no_trust_auth_and_redis_requires_a_password() -> None:
    assert "trust" not in COMPOSE.lower()
    assert re.search(r"POSTGRES_PASSWORD:\s*\"\$\{POSTGRES_PASSWORD:\?", COMPOSE)
    assert re.search(r'"--requirepass",\s*"\$\{REDIS_PASSWORD:\?', COMPOSE)
    assert "ports:" not in COMPOSE  # neither database nor broker is published


def test_rapport_connects_with_the_passwords_from_the_env_file() -> None:
    database = re.search(r"RAPPORT_DATABASE_URL:\s*\"([^\"]+)\"", COMPOSE)
    broker = re.search(r"RAPPORT_BROKER_URL:\s*\"([^\"]+)\"", COMPOSE)
    assert database and "rapport:${POSTGRES_PASSWORD:?" in database[1]
    assert broker and "redis://:${REDIS_PASSWORD:?" in broker[1]


def test_every_required_variable_has_a_placeholder_and_filled_files_stay_out_of_git() -> None:
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    placeholders = dict(re.findall(r"^([A-Z_]+)=(.*)$", example, re.MULTILINE))
    assert set(REQUIRED.findall(COMPOSE)) == set(placeholders) == {"POSTGRES_PASSWORD",
                                                                   "REDIS_PASSWORD"}
    assert all("CHANGE-ME" in value for value in placeholders.values())
    ignored = (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored and "rapport.env" in ignored
