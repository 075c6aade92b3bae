"""A mailbox's time zone, read the same way for a signed-in person and for an app-only grant.

GET /{me | users/{id}}/mailboxSettings
(https://learn.microsoft.com/en-us/graph/api/user-get-mailboxsettings) returns the Windows
form ("GMT Standard Time") unless an administrator chose IANA; both become IANA here.
"""

from __future__ import annotations

import logging

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
    raw = data.get("timeZone")
    zone = iana_name(raw) if isinstance(raw, str) else None
    if raw and zone is None:
        log.warning("mailbox time zone %r is not one we know; time zone unknown", raw)
    return zone
