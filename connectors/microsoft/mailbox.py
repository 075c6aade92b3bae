"""A mailbox's time zone, read the same way for a signed-in person and for an app-only grant.

GET /{me | users/{id}}/mailboxSettings
(https://learn.microsoft.com/en-us/graph/api/user-get-mailboxsettings) returns the Windows
form ("GMT Standard Time") unless an administrator chose IANA; both become IANA here. For a
directory's many people the reads go 20 to a JSON batch
(https://learn.microsoft.com/en-us/graph/json-batching), each answered on its own: a refused
one is an unknown zone, a throttled or failed one is read again alone under the retry policy.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from connectors.errors import Forbidden, NotFound
from connectors.microsoft.client import GraphClient
from connectors.microsoft.timezones import iana_name

log = logging.getLogger(__name__)


def mailbox_time_zone(client: GraphClient, root: str) -> str | None:
    """The IANA zone of the mailbox at `root` ("me" or "users/{id}"); None when it cannot be
    read (no Exchange mailbox, no MailboxSettings.Read, outside an app's access policy) or
    the zone is one we do not know."""
    try:
        data = client.json("GET", f"{root}/mailboxSettings", operation="mailboxSettings.get",
                           params={"$select": "timeZone"})
    except (Forbidden, NotFound) as err:
        log.info("mailbox settings not readable (%s); time zone unknown",
                 err.__class__.__name__)
        return None
    return _zone(data)


BATCH = 20  # requests per JSON batch, Graph's limit
UNREADABLE = frozenset({403, 404})  # no mailbox, no permission, outside the access policy


def mailbox_time_zones(client: GraphClient, user_ids: list[str]) -> dict[str, str | None]:
    """The IANA zone of each user's mailbox (None when unreadable or unknown), in batches."""
    zones: dict[str, str | None] = {}
    for start in range(0, len(user_ids), BATCH):
        chunk = user_ids[start:start + BATCH]
        requests = [{"id": str(n), "method": "GET",
                     "url": f"/users/{quote(uid)}/mailboxSettings?$select=timeZone"}
                    for n, uid in enumerate(chunk)]
        data = client.json("POST", "$batch", operation="mailboxSettings.batch",
                           json={"requests": requests})
        answers = {str(r.get("id")): r for r in data.get("responses", [])
                   if isinstance(r, dict)}
        for n, uid in enumerate(chunk):
            answer = answers.get(str(n), {})
            status = answer.get("status")
            if status == 200 and isinstance(answer.get("body"), dict):
                zones[uid] = _zone(answer["body"])
            elif status in UNREADABLE:
                zones[uid] = None
            else:  # throttled (429 with its Retry-After) or failed: once more, alone
                zones[uid] = mailbox_time_zone(client, f"users/{quote(uid)}")
    return zones


def _zone(settings: dict[str, Any]) -> str | None:
    raw = settings.get("timeZone")
    zone = iana_name(raw) if isinstance(raw, str) else None
    if raw and zone is None:
        log.warning("mailbox time zone %r is not one we know; time zone unknown", raw)
    return zone
