"""`rapport pairs`, `topic` and `action` agree on which pair an id or an email means."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import aliased

from service.agenda.models import PairTopic
from service.pairs.models import Pair
from service.people.models import Person

from .conftest import Harness
from .test_cli import _env, rapport


def _pairs_table(harness: Harness) -> dict[tuple[str, str], tuple[int, int]]:
    """(manager, report) -> (the `pair` column, the `series` column) of `rapport pairs`."""
    listed = rapport("pairs", env=_env(harness.settings.data_dir, harness))
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:4] == ["pair", "series", "manager", "report"]
    table = {}
    for row in rows:
        pair, series, manager, report = row.split()[:4]
        table[(manager, report)] = (int(pair), int(series))
    return table


def _topic_owner(harness: Harness, topic_id: int) -> tuple[str, str]:
    manager, report = aliased(Person), aliased(Person)
    with harness.session() as session:
        row = session.execute(
            select(manager.email, report.email).select_from(PairTopic)
            .join(Pair, Pair.id == PairTopic.pair_id)
            .join(manager, manager.id == Pair.manager_id)
            .join(report, report.id == Pair.report_id)
            .where(PairTopic.id == topic_id)).one()
        return row[0], row[1]


def _queued_id(stdout: str) -> int:
    found = re.match(r"Topic (\d+) queued for pair \d+", stdout)
    assert found, stdout
    return int(found.group(1))


def test_topic_add_takes_the_pair_id_that_pairs_shows(harness: Harness) -> None:
    harness.connect("maya@acme.test")
    harness.connect("dana@acme.test")
    harness.sync()
    env = _env(harness.settings.data_dir, harness)
    table = _pairs_table(harness)

    assert len(table) == 6
    # The rows where a pair id and a series id differ are the ones that used to go wrong.
    rows = sorted(table.items(), key=lambda item: item[1][0] == item[1][1])[:2]
    for (manager, report), (pair_id, _series_id) in rows:
        added = rapport("topic", "add", str(pair_id), f"for {report}", env=env)
        assert added.returncode == 0, added.stderr
        assert _topic_owner(harness, _queued_id(added.stdout)) == (manager, report)


def test_topic_add_by_report_email_lands_on_that_pair(harness: Harness) -> None:
    harness.connect("dana@acme.test")
    harness.sync()
    env = _env(harness.settings.data_dir, harness)

    added = rapport("topic", "add", "Lee@acme.test", "Career plan", env=env)

    assert added.returncode == 0, added.stderr
    assert "dana@acme.test -> lee@acme.test" in added.stdout
    assert _topic_owner(harness, _queued_id(added.stdout)) == ("dana@acme.test", "lee@acme.test")
    action = rapport("action", "add", "lee@acme.test", "Draft the plan", env=env)
    assert action.returncode == 0 and "dana@acme.test -> lee@acme.test" in action.stdout
    listed = rapport("action", "list", "--pair", "lee@acme.test", env=env)
    assert "Draft the plan" in listed.stdout


def test_an_unknown_or_ambiguous_pair_is_refused_in_one_line(harness: Harness) -> None:
    harness.connect("maya@acme.test")
    harness.sync()
    env = _env(harness.settings.data_dir, harness)

    for ref in ("999", "nobody@acme.test", "maya@acme.test", "not-a-ref"):
        refused = rapport("topic", "add", ref, "Some topic", env=env)
        assert refused.returncode != 0, ref
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and ref in lines[0], ref
    with harness.session() as session:
        assert session.scalars(select(PairTopic)).all() == []


def test_topic_list_and_remove(harness: Harness) -> None:
    harness.connect("maya@acme.test")
    harness.sync()
    env = _env(harness.settings.data_dir, harness)
    first = _queued_id(rapport("topic", "add", "sam@acme.test", "Offsite plans", env=env).stdout)
    second = _queued_id(rapport("topic", "add", "alex@acme.test", "Team moves", env=env).stdout)

    listed = rapport("topic", "list", env=env)
    only_sam = rapport("topic", "list", "sam@acme.test", env=env)

    assert listed.returncode == 0, listed.stderr
    assert "Offsite plans" in listed.stdout and "Team moves" in listed.stdout
    assert "Offsite plans" in only_sam.stdout and "Team moves" not in only_sam.stdout
    removed = rapport("topic", "remove", str(first), env=env)
    assert removed.returncode == 0, removed.stderr
    after = rapport("topic", "list", env=env).stdout
    assert "Offsite plans" not in after and "Team moves" in after
    again = rapport("topic", "remove", str(first), env=env)
    assert again.returncode != 0 and f"no topic with id {first}" in again.stderr
    with harness.session() as session:
        assert [t.id for t in session.scalars(select(PairTopic))] == [second]
