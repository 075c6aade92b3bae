"""A pair's agenda page behind a signed link: see the next agenda, add a topic or take back
one's own, tick items done or drop those recorded by mistake.

Two scopes (see `service.accounts.signing`): `/agenda/{pair}/{person}` is the shared page
(its link is in the invite, which both people see), `/prep/{pair}/{person}` is the
manager's own preparation with their private topics (its link is only in the manager's own
emails). Server-rendered, no JavaScript, no external assets. Forms POST back with a CSRF
token that is an HMAC of the link token and the person (a token from one link is worth
nothing on another), and a browser's Origin header, when sent, must be ours. Refused links,
and every POST, cost the client's address one token of a small bucket (`TokenBuckets`).
After a change the pair's next agenda is re-planned and its write enqueued at once, so the
invite follows within a minute (the reconciler would find it due anyway).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from application.web.ratelimit import TokenBuckets
from service.accounts.signing import (
    AGENDA_PATHS,
    AGENDA_PRIVATE,
    AGENDA_SHARED,
    LinkCheck,
    links_version,
    public_base,
    verify_agenda,
)
from service.agenda.items import MAX_TEXT, ItemError
from service.agenda.page import (
    add_page_topic,
    build_page,
    close_page_items,
    drop_page_items,
    remove_page_topic,
    role_in,
)
from service.people.zones import zone_name, zone_of
from service.settings import Settings

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 8 * 1024
MAX_TICKED = 100
MAX_ID = 2**31 - 1  # the id columns' range: a larger number names nothing (and PG would refuse)
_FORM_TYPE = "application/x-www-form-urlencoded"

Enqueue = Callable[[int], object]  # agenda id -> its write is sent


def csrf_token(key: bytes, *, scope: str, pair_id: int, person_id: int, sig: str) -> str:
    """The form token of one link: bound to its scope, pair, person and link token."""
    message = f"csrf\n{scope}\n{pair_id},{person_id}\n{sig}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def agenda_router(settings: Settings, factory: sessionmaker[Session], *, env: Environment,
                  key: bytes, headers: dict[str, str], clock: Callable[[], datetime],
                  enqueue_write: Enqueue) -> APIRouter:
    """The GET and POST routes of both scopes."""
    router = APIRouter()
    buckets = TokenBuckets()
    # Under "no-referrer" browsers send `Origin: null` with a form's POST, and the origin
    # check could not tell our page from any other; "same-origin" keeps the signed URL from
    # every other site all the same (the page links nowhere else).
    headers = {**headers, "Referrer-Policy": "same-origin"}

    def client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def refuse(request: Request, check: LinkCheck) -> Response:
        buckets.spend(client(request))
        return HTMLResponse(env.get_template("link_refused.html").render(
            reason=check.value, fresh="The invite of your next 1:1 carries a fresh one",
            latest="invite or Rapport email"), status_code=403, headers=headers)

    def check_link(scope: str, pair_id: int, person_id: int, sig: str | None) -> LinkCheck:
        if not (0 < pair_id <= MAX_ID and 0 < person_id <= MAX_ID):
            return LinkCheck.INVALID
        with factory() as session:
            version = links_version(session, person_id=person_id)
            role = role_in(session, pair_id=pair_id, person_id=person_id)
        if version is None or role is None or (scope == AGENDA_PRIVATE and role != "manager"):
            return LinkCheck.INVALID
        return verify_agenda(key, scope=scope, pair_id=pair_id, person_id=person_id,
                             token=sig, version=version, now=clock())

    def page_url(scope: str, pair_id: int, person_id: int, sig: str) -> str:
        return f"/{AGENDA_PATHS[scope]}/{pair_id}/{person_id}?sig={quote(sig)}"

    def show(request: Request, scope: str, pair_id: int, person_id: int) -> Response:
        client_address = client(request)
        if buckets.retry_after(client_address):
            return _too_many(buckets.retry_after(client_address))
        sig = request.query_params.get("sig")
        check = check_link(scope, pair_id, person_id, sig)
        if check is not LinkCheck.VALID or sig is None:
            return refuse(request, check)
        now = clock()
        with factory() as session:
            view = build_page(session, settings=settings, pair_id=pair_id,
                              person_id=person_id, private=scope == AGENDA_PRIVATE, now=now)
            session.rollback()  # planning for the page changes nothing
        tz = zone_of(view.time_zone)
        when = None
        if view.meeting_start is not None:
            local = view.meeting_start.astimezone(tz)
            when = f"{local:%A} {local.day} {local:%B}, {local:%H:%M} ({zone_name(tz)})"
        html = env.get_template("agenda.html").render(
            view=view, when=when, private=scope == AGENDA_PRIVATE,
            action=f"/{AGENDA_PATHS[scope]}/{pair_id}/{person_id}", sig=sig,
            csrf=csrf_token(key, scope=scope, pair_id=pair_id, person_id=person_id, sig=sig),
            max_text=MAX_TEXT, notice=_NOTICES.get(request.query_params.get("done", "")),
            zone=zone_name(tz), fmt=lambda moment: _day(moment, tz))
        return HTMLResponse(html, headers=headers)

    def save(scope: str, pair_id: int, person_id: int, what: str,
             form: dict[str, list[str]]) -> list[int]:
        """Store the change in one transaction; the agendas whose write is now due."""
        now = clock()
        private = scope == AGENDA_PRIVATE
        with factory.begin() as session:
            if what == "topic":
                return add_page_topic(session, settings=settings, pair_id=pair_id,
                                      person_id=person_id, text=_one(form, "text") or "",
                                      private=private and _one(form, "private") == "yes",
                                      now=now)
            if what == "removed":
                topic_ids = _ids(form, "topic")[:1]
                if not topic_ids:
                    raise ItemError("no topic was chosen")
                return remove_page_topic(session, settings=settings, pair_id=pair_id,
                                         person_id=person_id, topic_id=topic_ids[0],
                                         private=private, now=now)
            change_items = close_page_items if what == "items" else drop_page_items
            return change_items(session, settings=settings, pair_id=pair_id,
                                person_id=person_id, item_ids=_ids(form, "done"), now=now)

    async def change(request: Request, scope: str, pair_id: int, person_id: int,
                     what: str) -> Response:
        client_address = client(request)
        wait = buckets.retry_after(client_address)
        if wait:
            return _too_many(wait)
        buckets.spend(client_address)
        if not _same_origin(request, settings):
            return PlainTextResponse("This form must be sent from Rapport's own page.",
                                     status_code=403, headers=headers)
        form = await _read_form(request)
        if form is None:
            return PlainTextResponse("The form could not be read (too large or not a form).",
                                     status_code=400, headers=headers)
        sig = _one(form, "sig")
        check = await run_in_threadpool(check_link, scope, pair_id, person_id, sig)
        if check is not LinkCheck.VALID or sig is None:
            return refuse(request, check)
        expected = csrf_token(key, scope=scope, pair_id=pair_id, person_id=person_id, sig=sig)
        if not hmac.compare_digest(expected.encode(), (_one(form, "csrf") or "").encode()):
            return PlainTextResponse("This form has expired; open the page again and retry.",
                                     status_code=403, headers=headers)
        try:
            due = await run_in_threadpool(save, scope, pair_id, person_id, what, form)
        except ItemError as err:
            return PlainTextResponse(f"Not saved: {err}.", status_code=400, headers=headers)
        for agenda_id in due:
            enqueue_write(agenda_id)
        log.info("agenda page: pair %s changed (%s), %d invites to write", pair_id, what,
                 len(due))
        return RedirectResponse(page_url(scope, pair_id, person_id, sig) + f"&done={what}",
                                status_code=303, headers=headers)

    def post_of(scope: str, what: str) -> Callable[..., Awaitable[Response]]:
        """The POST route of one change (no defaults: FastAPI would read them from the URL)."""
        async def post(request: Request, pair_id: int, person_id: int) -> Response:
            return await change(request, scope, pair_id, person_id, what)
        return post

    for scope in (AGENDA_SHARED, AGENDA_PRIVATE):
        path = f"/{AGENDA_PATHS[scope]}/{{pair_id}}/{{person_id}}"

        def get(request: Request, pair_id: int, person_id: int, scope: str = scope) -> Response:
            return show(request, scope, pair_id, person_id)

        router.add_api_route(path, get, methods=["GET"], response_class=HTMLResponse)
        for suffix, what in _CHANGES.items():
            router.add_api_route(f"{path}/{suffix}", post_of(scope, what), methods=["POST"])
    return router


# the form actions under a page's path, and the change each one makes (its `done` notice)
_CHANGES = {"topics": "topic", "topics/remove": "removed", "done": "items", "drop": "dropped"}
_NOTICES = {"topic": "Your topic is on the agenda; the invite follows within a minute.",
            "items": "Saved; the invite follows within a minute.",
            "removed": "Your topic is off the agenda; the invite follows within a minute.",
            "dropped": "Dropped: those items are off the agenda and do not count as done. "
                       "The invite follows within a minute."}


def _day(moment: datetime, tz: tzinfo) -> str:
    """"Tue 3 Dec" on the viewer's wall clock."""
    local = moment.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b}"


def _too_many(wait: int) -> Response:
    return PlainTextResponse("Too many requests; try again shortly.", status_code=429,
                             headers={"Retry-After": str(wait)})


def _same_origin(request: Request, settings: Settings) -> bool:
    """No Origin (an older browser, or not a browser: the CSRF token still guards), or the
    origin of this very server or of RAPPORT_PUBLIC_URL."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    ours = {str(request.base_url).rstrip("/")}
    public = urlsplit(public_base(settings))
    ours.add(f"{public.scheme}://{public.netloc}")
    return origin.rstrip("/") in ours


async def _read_form(request: Request) -> dict[str, list[str]] | None:
    """A small url-encoded form, or None (anything else, or larger than MAX_FORM_BYTES)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != _FORM_TYPE:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        return None


def _ids(form: dict[str, list[str]], name: str) -> list[int]:
    """The form's ids under `name` (at most MAX_TICKED); anything not an id is left out."""
    return [int(v) for v in form.get(name, [])[:MAX_TICKED]
            if v.isascii() and v.isdigit() and len(v) <= 10 and 0 < int(v) <= MAX_ID]


def _one(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None
