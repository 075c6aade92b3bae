"""A synthetic company for the Microsoft 365 sandbox: an org chart three levels under one
chief executive, mailbox time zones, one disabled account, and the seeded team's Microsoft
365 people placed in it (Dana manages Lee, Priya and Jordan), so their meetings are there.

`GraphSandbox.seed_company(company_users())` loads it; the demo and tests use it.
"""

from __future__ import annotations

import itertools

from sandbox.microsoft.tenants import DirectoryUser
from sandbox.team import DOMAIN, TEAM

FIRST = ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lina",
         "Milo", "Nia", "Omar", "Pia", "Quin", "Rosa", "Sven", "Tara", "Uma", "Vik", "Wren",
         "Yara", "Zeb")
LAST = ("Abara", "Brandt", "Costa", "Dubois", "Eklund", "Fischer", "Garcia", "Haddad", "Ito",
        "Jensen", "Kowalski", "Larsen", "Moreau", "Novak", "Okoro", "Petrov", "Quist", "Rossi",
        "Sato", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Young")
ZONES = ("Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles",
         "Asia/Kolkata", "Asia/Tokyo")
HEADS = 5
MANAGERS_PER_HEAD = 5
DANA = f"dana@{DOMAIN}"
TEAM_REPORTS = (f"lee@{DOMAIN}", f"priya@{DOMAIN}", f"jordan@{DOMAIN}")
DISABLED = f"left.person@{DOMAIN}"


def company_users(size: int = 300, *, domain: str = DOMAIN) -> list[DirectoryUser]:
    """`size` people (at least 40): a chief executive, heads, managers and their reports."""
    names = (f"{f} {last}" + (f" {n + 1}" if n else "")  # past 625 names, numbered
             for n in itertools.count() for last, f in itertools.product(LAST, FIRST))
    zones = itertools.cycle(ZONES)

    def person(manager: str | None, name: str | None = None,
               email: str | None = None) -> DirectoryUser:
        name = name or next(names)
        address = email or f"{name.lower().replace(' ', '.')}@{domain}"
        return DirectoryUser(email=address, name=name, time_zone=next(zones), manager=manager)

    chief = person(None)
    heads = [person(chief.email) for _ in range(HEADS)]
    managers = [person(h.email) for h in heads for _ in range(MANAGERS_PER_HEAD)]
    team = {p.email: p for p in TEAM.people_on("microsoft")}
    dana = team[DANA]
    managers[0] = DirectoryUser(DANA, dana.name, dana.time_zone, manager=heads[0].email)
    users = [chief, *heads, *managers]
    users += [DirectoryUser(e, team[e].name, team[e].time_zone, manager=DANA)
              for e in TEAM_REPORTS]
    users.append(DirectoryUser(DISABLED, "Left Person", "Europe/London", manager=DANA,
                               enabled=False))
    others = itertools.cycle(managers[1:])
    while len(users) < size:
        users.append(person(next(others).email))
    return users
