"""Who the sandbox's Google Workspace directory holds: the demo team, or a generated company.

`team_directory` lists the team's Google people (Sam and Alex report to Maya, Kim to Dana,
who lives on Microsoft 365, so outside this directory) and an IT admin. `build_company`
generates a company of any size, three levels of managers deep (a CEO, department heads,
team leads, then their teams), with org units per department and team, weekly 1:1s for most
pairs, a few 1:1s organised by the report, a few reports with no 1:1 at all, one suspended
person, and a suggested manager change. Pass both to ``GoogleSandbox(population=...,
directory=...)``; every reset seeds them again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.team import DOMAIN, EXPECTED_PAIRS, Person, Population, SeriesSpec

ADMIN_EMAIL = f"it-admin@{DOMAIN}"


@dataclass(frozen=True)
class DirectoryEntry:
    """One user of the Workspace directory."""

    email: str
    name: str
    org_unit: str = "/"
    manager: str | None = None  # the manager's address (relations[type=manager])
    suspended: bool = False
    is_admin: bool = False
    time_zone: str = "UTC"


def team_directory(population: Population) -> tuple[DirectoryEntry, ...]:
    """The population's Google people, with the team's managers, and an IT admin."""
    managers = {report: manager for manager, report in EXPECTED_PAIRS}
    people = tuple(DirectoryEntry(p.email, p.name, manager=managers.get(p.email),
                                  time_zone=p.time_zone)
                   for p in population.people_on("google"))
    return people + (DirectoryEntry(ADMIN_EMAIL, "Ira Admin", org_unit="/IT", is_admin=True),)


@dataclass(frozen=True)
class Company:
    """A generated company: who has a calendar and which meetings (`population`), what the
    directory says (`directory`), and the people a demo points at."""

    population: Population
    directory: tuple[DirectoryEntry, ...]
    admin: str
    suspended: str  # the one suspended person
    self_organised: tuple[str, ...]  # reports who organise their own 1:1
    uncovered: tuple[str, ...]  # reports with no 1:1 at all
    manager_change: tuple[str, str]  # (report, new manager) for the demo to apply


_FIRST = ("Avery", "Blake", "Casey", "Devon", "Emery", "Finley", "Gray", "Harper", "Indy",
          "Jules", "Kai", "Logan", "Morgan", "Noor", "Oakley", "Parker", "Quinn", "Reese",
          "Sasha", "Taylor", "Uma", "Val", "Wren", "Yael", "Zion")
_LAST = ("Adams", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito",
         "Jensen", "Khan", "Lopez", "Meyer", "Novak", "Okafor", "Patel", "Rossi", "Silva",
         "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Young", "Zhou")
_DEPARTMENTS = ("Engineering", "Sales", "Support", "Finance", "People")
_ZONES = ("America/New_York", "Europe/Berlin", "Europe/London", "America/Los_Angeles",
          "Asia/Kolkata")


def build_company(size: int = 300, *, domain: str = DOMAIN, team_size: int = 8,
                  leads_per_head: int = 6) -> Company:
    """A company of about `size` people on Google, deterministic for a given size."""
    if size < 1 + len(_DEPARTMENTS) * 2:
        raise ValueError(f"a company needs at least {1 + len(_DEPARTMENTS) * 2} people")
    entries: list[DirectoryEntry] = []

    def add(name_index: int, org_unit: str, manager: str | None) -> str:
        first = _FIRST[name_index % len(_FIRST)]
        last = _LAST[(name_index // len(_FIRST)) % len(_LAST)]
        email = f"{first}.{last}{name_index // (len(_FIRST) * len(_LAST)) or ''}@{domain}"
        entries.append(DirectoryEntry(email.lower(), f"{first} {last}", org_unit, manager,
                                      time_zone=_ZONES[name_index % len(_ZONES)]))
        return email.lower()

    ceo = add(0, "/", None)
    heads = [add(1 + d, f"/{dept}", ceo) for d, dept in enumerate(_DEPARTMENTS)]
    leads: list[tuple[str, str]] = []  # (lead, org unit of the team)
    while len(entries) < size and len(leads) < len(heads) * leads_per_head:
        d = len(leads) % len(heads)
        unit = f"/{_DEPARTMENTS[d]}/Team {len(leads) // len(heads) + 1}"
        leads.append((add(len(entries), unit, heads[d]), unit))
    t = 0
    while len(entries) < size:
        lead, unit = leads[t % len(leads)]
        add(len(entries), unit, lead)
        t += 1

    series: list[SeriesSpec] = []
    uncovered: list[str] = []
    self_organised: list[str] = []
    for n, entry in enumerate(e for e in entries if e.manager):
        manager = entry.manager
        assert manager is not None
        if n % 11 == 10:
            uncovered.append(entry.email)
            continue
        organiser, other = (entry.email, manager) if n % 17 == 5 else (manager, entry.email)
        if organiser == entry.email:
            self_organised.append(entry.email)
        series.append(SeriesSpec(
            f"company-{n}", organiser, (other,), f"{_short(manager)} / {_short(entry.email)} 1:1",
            entry.time_zone, n % 5, (9 + n % 7, 0 if n % 2 else 30),
            rrule="RRULE:FREQ=WEEKLY" if n % 4 else "RRULE:FREQ=WEEKLY;INTERVAL=2"))

    members = [e for e in entries if e.manager and e.manager != ceo and e.email not in
               {lead for lead, _ in leads}]
    suspended = members[len(members) // 2].email
    entries = [DirectoryEntry(e.email, e.name, e.org_unit, e.manager, e.email == suspended,
                              time_zone=e.time_zone) for e in entries]
    admin = f"it-admin@{domain}"
    entries.append(DirectoryEntry(admin, "Ira Admin", "/IT", is_admin=True))
    mover = members[1]
    new_lead = next(lead for lead, _ in leads if lead != mover.manager)
    population = Population(
        tuple(Person(e.email, e.name, e.time_zone, "google") for e in entries), tuple(series))
    return Company(population, tuple(entries), admin, suspended, tuple(self_organised),
                   tuple(uncovered), (mover.email, new_lead))


def _short(email: str) -> str:
    """"avery.adams@..." -> "Avery"."""
    return email.split(".", 1)[0].capitalize()
