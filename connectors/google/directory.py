"""`GoogleDirectory`: the `DirectoryConnector` for a Google Workspace domain (Admin SDK
Directory API, read as an admin through domain-wide delegation).

- ``users.list`` (https://developers.google.com/workspace/admin/directory/reference/rest/v1/users/list)
  with ``customer=my_customer`` (every domain of the account) or ``domain=``, paged with
  ``pageToken`` / ``maxResults`` (500, the documented maximum). ``projection`` stays
  ``basic``: it leaves out only custom schema fields, and ``relations`` (where the manager
  is named, ``type: manager``, ``value``: an address) is a standard field.
- An org unit narrows the list with the search syntax of
  https://developers.google.com/workspace/admin/directory/v1/guides/search-users:
  ``orgUnitPath='/Sales EU'`` matches that unit and every unit below it.
- A group: ``members.list`` (users only; nested groups through
  ``includeDerivedMembership``), then ``users.get`` for each member, since a member entry
  holds no name, suspension or manager.

Errors go through the connectors' one tree (`connectors.google.client`); the page token is
handed back so the caller can resume a listing that failed half-way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from google.auth.credentials import Credentials

from connectors.base import CallObserver, DirectoryPage, DirectoryPerson
from connectors.google.client import GoogleClient, build_service
from connectors.retry import RetryPolicy

DEFAULT_DIRECTORY_URL = "https://admin.googleapis.com/"
USERS_PAGE = 500  # users.list maxResults maximum
MEMBERS_PAGE = 200  # members.list maxResults maximum


def person_from_user(user: dict[str, Any]) -> DirectoryPerson:
    """A directory person from a ``users`` resource (name, address, suspended, manager)."""
    manager = next((r.get("value") for r in user.get("relations") or []
                    if r.get("type") == "manager" and r.get("value")), None)
    name = (user.get("name") or {}).get("fullName")
    return DirectoryPerson(id=str(user["id"]), email=str(user["primaryEmail"]).lower(),
                           name=name or None, suspended=bool(user.get("suspended", False)),
                           manager_email=str(manager).lower() if manager else None)


class GoogleDirectory:
    """The people of one Workspace grant: the whole account, a domain, an org unit or a group."""

    provider: ClassVar[str] = "google"

    def __init__(self, credentials: Credentials, *, api_url: str = DEFAULT_DIRECTORY_URL,
                 domain: str | None = None, org_unit: str | None = None,
                 group: str | None = None, observer: CallObserver | None = None,
                 ca_bundle: str | Path | None = None, retry: RetryPolicy | None = None,
                 page_size: int = USERS_PAGE) -> None:
        """`credentials` act as an admin of the domain (``with_subject``)."""
        if org_unit and group:
            raise ValueError("a grant is narrowed by an org unit or a group, not both")
        service = build_service("admin", "directory_v1", credentials, api_url=api_url,
                                ca_bundle=ca_bundle)
        self._client = GoogleClient(service, observer=observer, retry=retry)
        self._domain, self._org_unit, self._group = domain, org_unit, group
        self._page_size = page_size

    def list_people(self, page_token: str | None = None) -> DirectoryPage:
        """One page of people in the granted scope; resume with its `next_page_token`."""
        if self._group:
            return self._group_page(page_token)
        params: dict[str, Any] = {"maxResults": self._page_size}
        if self._domain:
            params["domain"] = self._domain
        else:
            params["customer"] = "my_customer"
        if self._org_unit:
            params["query"] = "orgUnitPath='{}'".format(self._org_unit.replace("'", "\\'"))
        if page_token:
            params["pageToken"] = page_token
        body = self._client.list_users(**params)
        people = [person_from_user(u) for u in body.get("users") or []]
        return DirectoryPage(people=people, next_page_token=body.get("nextPageToken") or None)

    def _group_page(self, page_token: str | None) -> DirectoryPage:
        params: dict[str, Any] = {"maxResults": min(self._page_size, MEMBERS_PAGE),
                                  "includeDerivedMembership": True}
        if page_token:
            params["pageToken"] = page_token
        assert self._group is not None
        body = self._client.list_members(self._group, **params)
        people = [person_from_user(self._client.get_user(str(m["id"])))
                  for m in body.get("members") or [] if m.get("type") == "USER"]
        return DirectoryPage(people=people, next_page_token=body.get("nextPageToken") or None)
