"""`GraphDirectory`: a Microsoft 365 tenant's people, as Rapport's `DirectoryConnector`.

People come from GET /users (https://learn.microsoft.com/en-us/graph/api/user-list) with
``$select`` (``accountEnabled`` is not a default property, so it is asked for) and
``$expand=manager($select=id,mail)``, which puts each person's manager inline
(https://learn.microsoft.com/en-us/graph/api/user-list-manager); Graph caps ``$expand`` on
directory objects at 100 per page (a documented known issue), so pages ask for 100. Pages
follow ``@odata.nextLink`` (https://learn.microsoft.com/en-us/graph/paging), which is the
page token handed back: it carries its own query. Each enabled person's time zone comes from
their mailbox settings, read 20 to a JSON batch (`connectors.microsoft.mailbox`), so a page of
100 people costs 6 calls; guests (``#EXT#`` user principal names) are not the company's people.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar

from connectors.base import CallObserver, DirectoryPage, DirectoryPerson
from connectors.microsoft.client import GraphClient
from connectors.microsoft.mailbox import mailbox_time_zones
from connectors.retry import RetryPolicy

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # the most Graph returns per page with $expand on directory objects
SELECT = "id,displayName,mail,userPrincipalName,accountEnabled"
EXPAND = "manager($select=id,mail)"


class GraphDirectory:
    """One tenant's directory through an app-only token (User.Read.All,
    MailboxSettings.Read); auth is handed in as `token_provider`."""

    provider: ClassVar[str] = "microsoft"

    def __init__(self, *, token_provider: Callable[[], str], api_url: str,
                 verify: str | bool = True, observer: CallObserver | None = None,
                 page_size: int = PAGE_SIZE, retry: RetryPolicy | None = None) -> None:
        self.client = GraphClient(token_provider=token_provider, api_url=api_url,
                                  verify=verify, observer=observer, retry=retry)
        self.page_size = page_size

    def close(self) -> None:
        """Release the HTTP connections."""
        self.client.close()

    def check_access(self) -> None:
        """One cheap directory read (GET /users?$top=1) that fails as the grant would."""
        self.client.json("GET", "users", operation="users.list",
                         params={"$select": "id", "$top": "1"})

    def list_people(self, page_token: str | None = None) -> DirectoryPage:
        """One page of the tenant's people; `page_token` is the previous page's nextLink."""
        if page_token is not None:
            url, params = page_token, None
        else:
            url, params = "users", {"$select": SELECT, "$expand": EXPAND,
                                    "$top": str(self.page_size)}
        data = self.client.json("GET", url, operation="users.list", params=params)
        people = [p for p in (self._person(raw) for raw in data.get("value", [])) if p]
        zones = mailbox_time_zones(self.client, [p.id for p in people if not p.suspended])
        people = [replace(p, time_zone=zones.get(p.id)) for p in people]
        return DirectoryPage(people=people, next_page_token=data.get("@odata.nextLink"))

    def _person(self, raw: Any) -> DirectoryPerson | None:
        if not isinstance(raw, dict) or not raw.get("id"):
            log.warning("directory entry without an id skipped")
            return None
        upn = str(raw.get("userPrincipalName") or "")
        address = raw.get("mail") or upn
        if "#EXT#" in upn.upper() or not address or "@" not in address:
            log.info("directory user %s skipped: a guest or no address", raw["id"])
            return None
        found = raw.get("manager")
        manager: dict[str, Any] = found if isinstance(found, dict) else {}
        return DirectoryPerson(
            id=str(raw["id"]), email=str(address).lower(), name=raw.get("displayName"),
            suspended=raw.get("accountEnabled") is False, manager_id=manager.get("id"),
            manager_email=(manager.get("mail") or "").lower() or None)
