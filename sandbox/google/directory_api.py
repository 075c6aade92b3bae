"""Admin SDK Directory routes of the Google sandbox: ``users.list``, ``users.get`` and
``members.list``, in the shapes google-api-python-client's ``admin directory_v1`` speaks.

Followed pages (https://developers.google.com/workspace/admin/directory/reference/rest/v1/):
``users/list`` (``customer`` or ``domain`` required; ``maxResults`` 1..500, default 100;
``pageToken``; ``query`` with the search syntax of guides/search-users, of which
``orgUnitPath=`` is served: it matches the unit and every unit below it; ``showDeleted``
only ``false``), ``users/get`` (``userKey`` = address or id) and ``members/list``
(``maxResults`` up to 200). Only a delegated token acting as an admin of the domain, with a
directory scope, may call them; others get the documented 403s.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.google.app import ApiError, SandboxApp
from sandbox.google.runtime import Runtime
from sandbox.google.workspace import MEMBERS_READ_SCOPES, USERS_READ_SCOPES, DirectoryUser

DIRECTORY = "/admin/directory/v1"
DEFAULT_USERS_PAGE, MAX_USERS_PAGE = 100, 500
DEFAULT_MEMBERS_PAGE, MAX_MEMBERS_PAGE = 200, 200


def _not_authorised() -> ApiError:
    return ApiError(403, "forbidden", "Not Authorized to access this resource/api")


def _bad(message: str, location: str) -> ApiError:
    return ApiError(400, "invalid", message, locationType="parameter", location=location)


def _size(request: Request, default: int, maximum: int) -> int:
    raw = request.query_params.get("maxResults")
    try:
        size = int(raw) if raw is not None else default
    except ValueError as err:
        raise _bad("Invalid value for maxResults", "maxResults") from err
    if not 1 <= size <= maximum:
        raise _bad(f"Invalid value for maxResults: {raw}", "maxResults")
    return size


def _page_token(offset: int, key: str) -> str:
    raw = json.dumps({"o": offset, "k": key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(request: Request, key: str) -> int:
    token = request.query_params.get("pageToken")
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["k"] == key and isinstance(data["o"], int):
            return int(data["o"])
    except (ValueError, KeyError, TypeError):
        pass
    raise _bad("Invalid page token", "pageToken")


def org_unit_of(query: str | None) -> str | None:
    """The org unit of a ``query`` such as ``orgUnitPath='/Sales EU'`` (quotes optional)."""
    if query is None or not query.strip():
        return None
    name, sep, value = query.strip().partition("=")
    if name.strip() != "orgUnitPath" or not sep:
        raise _bad("Invalid Input: the sandbox serves orgUnitPath= queries only", "query")
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if not value.startswith("/"):
        raise _bad("Invalid Input: orgUnitPath", "query")
    return value


class DirectoryApi:
    """The Directory routes, served through the sandbox's bearer-auth wrapper."""

    def __init__(self, app: SandboxApp, runtime: Runtime) -> None:
        self.app = app
        self.rt = runtime
        self.ws = runtime.workspace

    def routes(self) -> list[Route]:
        """The routes to add to the sandbox's app."""
        return [
            Route(f"{DIRECTORY}/users", self.app.api(self.users_list), methods=["GET"]),
            Route(f"{DIRECTORY}/users/{{key}}", self.app.api(self.users_get), methods=["GET"]),
            Route(f"{DIRECTORY}/groups/{{group}}/members", self.app.api(self.members_list),
                  methods=["GET"]),
        ]

    def _admin(self, request: Request, user: str, scopes: Sequence[frozenset[str]]) -> None:
        """Only a delegated token of a domain admin with one of the `scopes` sets passes."""
        auth = request.headers.get("authorization", "")
        granted = self.ws.scopes_of(auth[7:]) or frozenset()
        if not any(granted & allowed for allowed in scopes):
            raise ApiError(403, "insufficientPermissions",
                           "Request had insufficient authentication scopes.")
        account = self.ws.find_user(user)
        if account is None or not account.is_admin:
            raise _not_authorised()

    async def users_list(self, request: Request, user: str) -> Response:
        """users.list, paged, by customer or domain, optionally one org unit (subtree)."""
        self._admin(request, user, [USERS_READ_SCOPES])
        q = request.query_params
        customer, domain = q.get("customer"), q.get("domain")
        if not customer and not domain:
            raise _bad("Bad Request: customer or domain is required", "customer")
        if customer and customer not in ("my_customer", self.ws.customer_id):
            raise _not_authorised()
        if domain and domain.lower() != self.ws.domain:
            raise _not_authorised()
        if q.get("showDeleted", "false").lower() == "true":
            raise _bad("The sandbox keeps no deleted users", "showDeleted")
        if q.get("projection", "basic") not in ("basic", "full"):
            raise _bad("Invalid value for projection", "projection")
        org_unit = org_unit_of(q.get("query"))
        size = _size(request, DEFAULT_USERS_PAGE, MAX_USERS_PAGE)
        key = f"users:{domain or customer}:{org_unit or '/'}"
        offset = _offset(request, key)
        with self.ws.lock:
            status = self.ws.failing_pages.get(offset // size)
        if status is not None:  # injected: Google's documented 5xx backendError
            raise ApiError(status, "backendError", "Backend Error")
        users = self.ws.listed_users(org_unit)
        page = users[offset:offset + size]
        body: dict[str, Any] = {"kind": "admin#directory#users", "etag": f'"{len(users)}"',
                                "users": [u.resource(self.ws.customer_id) for u in page]}
        if offset + size < len(users):
            body["nextPageToken"] = _page_token(offset + size, key)
        return JSONResponse(body)

    async def users_get(self, request: Request, user: str) -> Response:
        """users.get by address or id."""
        self._admin(request, user, [USERS_READ_SCOPES])
        found = self.ws.find_user(request.path_params["key"])
        if found is None:
            raise ApiError(404, "notFound", "Resource Not Found: userKey")
        return JSONResponse(found.resource(self.ws.customer_id))

    async def members_list(self, request: Request, user: str) -> Response:
        """members.list of one group (its direct user members), paged."""
        self._admin(request, user, [MEMBERS_READ_SCOPES])
        group = request.path_params["group"].lower()
        with self.ws.lock:
            members = list(self.ws.groups.get(group, ()))
        if group not in self.ws.groups:
            raise ApiError(404, "notFound", "Resource Not Found: groupKey")
        size = _size(request, DEFAULT_MEMBERS_PAGE, MAX_MEMBERS_PAGE)
        offset = _offset(request, f"members:{group}")
        known = [self.ws.find_user(email) for email in members[offset:offset + size]]
        body: dict[str, Any] = {"kind": "admin#directory#members", "etag": f'"{len(members)}"',
                                "members": [_member(u) for u in known if u is not None]}
        if offset + size < len(members):
            body["nextPageToken"] = _page_token(offset + size, f"members:{group}")
        return JSONResponse(body)


def _member(user: DirectoryUser) -> dict[str, Any]:
    """The documented ``Member`` resource of a user member."""
    return {"kind": "admin#directory#member", "etag": f'"{user.id}"', "id": user.id,
            "email": user.email, "role": "MEMBER", "type": "USER",
            "status": "SUSPENDED" if user.suspended else "ACTIVE"}
