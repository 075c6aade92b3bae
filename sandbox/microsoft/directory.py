"""What an app-only token may reach in the Graph sandbox, and the ``/users`` directory.

`authorize_app` is the rule the Graph edge applies to every app-only request: ``/me`` is for
delegated tokens only; ``/users`` needs User.Read.All (403 ``Authorization_RequestDenied``
otherwise, as directory reads answer); a mailbox path (``/users/{id|upn}/calendars``,
``/events``, ``/calendarView``, ``/calendar/getSchedule``) needs Calendars.ReadWrite (or
Calendars.Read to read), ``/mailboxSettings`` MailboxSettings.Read, both answering 403
``ErrorAccessDenied`` without it, and the application access policy: a mailbox outside the
policy's group answers 403 ``ErrorAccessDenied`` "Blocked by tenant configured AppOnly
AccessPolicy settings" (https://learn.microsoft.com/en-us/graph/auth-limit-mailbox-access).

``GET /users`` (https://learn.microsoft.com/en-us/graph/api/user-list) honours ``$select``
(``accountEnabled`` is not among the default properties, so it must be selected),
``$expand=manager($select=...)`` (the manager inline; absent when there is none), ``$top``
(1..999, but at most 100 with ``$expand``: Graph's documented known issue for ``$expand`` on
directory objects) and pages with ``@odata.nextLink`` carrying a ``$skiptoken``
(https://learn.microsoft.com/en-us/graph/paging).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.microsoft.render import graph_error
from sandbox.microsoft.tenants import (
    CALENDARS,
    MAILBOX_SETTINGS,
    POLICY_BLOCKED,
    USERS,
    AppToken,
    DirectoryUser,
    Tenants,
)

DEFAULT_TOP = 100
MAX_TOP = 999
MAX_TOP_EXPANDED = 100
DEFAULT_SELECT = ("businessPhones", "displayName", "givenName", "jobTitle", "mail",
                  "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                  "userPrincipalName", "id")
DENIED = "Access is denied. Check credentials and try again."
_EXPAND = re.compile(r"^manager(?:\(\$select=([^)]*)\))?$")

Refusal = tuple[int, str, str]  # status, Graph error code, message


def authorize_app(tenants: Tenants, app: AppToken, method: str,
                  path: str) -> tuple[str | None, Refusal | None]:
    """(mailbox owner, refusal) for an app-only request on a Graph v1.0 `path`."""
    parts = [unquote(p) for p in path.removeprefix("/v1.0").strip("/").split("/")]
    if parts[0] == "me":
        return None, (400, "BadRequest",
                      "/me request is only valid with delegated authentication flow.")
    if parts[0] != "users":
        return None, None  # subscriptions: the route checks the resource itself
    if len(parts) == 1:
        if USERS not in app.roles:
            return None, (403, "Authorization_RequestDenied",
                          "Insufficient privileges to complete the operation.")
        return None, None
    user, registration = tenants.reach(app, parts[1])
    if user is None:
        if len(parts) == 2:
            return None, (404, "Request_ResourceNotFound",
                          f"Resource '{parts[1]}' does not exist or one of its queried "
                          "reference-property objects are not present.")
        return None, (404, "ErrorInvalidUser", f"The requested user '{parts[1]}' is invalid.")
    if len(parts) == 2:
        if USERS not in app.roles:
            return None, (403, "Authorization_RequestDenied",
                          "Insufficient privileges to complete the operation.")
        return user.email, None
    if parts[2] == "mailboxSettings":
        allowed = MAILBOX_SETTINGS in app.roles
    else:
        allowed = CALENDARS in app.roles or (method == "GET" and "Calendars.Read" in app.roles)
    if not allowed:
        return None, (403, "ErrorAccessDenied", DENIED)
    if not registration.reaches(user.email):
        return None, (403, "ErrorAccessDenied", POLICY_BLOCKED)
    return user.email, None


def render_user(user: DirectoryUser, select: list[str] | None,
                manager: DirectoryUser | None = None,
                manager_select: list[str] | None = None) -> dict[str, Any]:
    """A user resource (https://learn.microsoft.com/en-us/graph/api/resources/user)."""
    full: dict[str, Any] = {
        "id": user.id, "displayName": user.name, "mail": user.email,
        "userPrincipalName": user.email, "accountEnabled": user.enabled,
        "givenName": user.name.split(" ")[0], "surname": user.name.split(" ")[-1],
        "businessPhones": [], "jobTitle": None, "mobilePhone": None, "officeLocation": None,
        "preferredLanguage": "en-GB",
    }
    out = {k: full[k] for k in (select or DEFAULT_SELECT) if k in full}
    if manager is not None:
        out["manager"] = {"@odata.type": "#microsoft.graph.user",
                          **render_user(manager, manager_select)}
    return out


def _list(value: str | None) -> list[str] | None:
    return [s.strip() for s in value.split(",") if s.strip()] if value else None


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(graph_error(code, message), status_code=status)


def directory_router(tenants: Tenants, base_url: Callable[[], str]) -> APIRouter:
    """``GET /v1.0/users`` for app-only tokens."""
    router = APIRouter()

    @router.get("/v1.0/users", response_model=None)
    def list_users(request: Request) -> Any:
        app: AppToken | None = request.state.app
        if app is None:  # a delegated grant without User.Read.All
            return _error(403, "Authorization_RequestDenied",
                          "Insufficient privileges to complete the operation.")
        q = request.query_params
        select = _list(q.get("$select"))
        expand = q.get("$expand")
        match = _EXPAND.match(expand or "") if expand else None
        if expand and match is None:
            return _error(400, "Request_BadRequest",
                          f"Could not find a property named '{expand}' on type "
                          "'microsoft.graph.user'.")
        manager_select = _list(match.group(1)) if match else None
        cap = MAX_TOP_EXPANDED if expand else MAX_TOP
        try:
            top = min(int(q.get("$top", DEFAULT_TOP)), cap)
            offset = int(base64.urlsafe_b64decode(q["$skiptoken"]).decode().removeprefix(
                "offset:")) if "$skiptoken" in q else 0
        except ValueError:
            return _error(400, "Request_BadRequest", "Invalid $top or $skiptoken.")
        if top < 1:
            return _error(400, "Request_BadRequest", "Invalid page size specified: '0'.")
        with tenants.lock:
            tenant = tenants.tenants[app.tenant]
            people = list(tenant.users.values())
            page = people[offset:offset + top]
            value = [render_user(u, select,
                                 tenant.users.get(u.manager or "") if match else None,
                                 manager_select) for u in page]
        body: dict[str, Any] = {"@odata.context": f"{base_url()}/$metadata#users", "value": value}
        if offset + top < len(people):
            token = base64.urlsafe_b64encode(f"offset:{offset + top}".encode()).decode()
            query = {k: v for k, v in q.items() if k != "$skiptoken"} | {"$skiptoken": token}
            body["@odata.nextLink"] = f"{base_url()}/users?{urlencode(query)}"
        return JSONResponse(body)

    return router
