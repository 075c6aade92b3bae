"""The web app: a read-only page per manager and a pair's agenda page (`agenda_page`), each
behind a signed link, health and metrics.

Server-rendered (Jinja2), no JavaScript, no external assets: the 12-week chart is inline SVG
built here. Sessions are short and closed before the page renders.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from application.web.agenda_page import agenda_router
from application.web.pages import PAGE_HEADERS as _PAGE_HEADERS
from application.web.pages import env as _env
from service import observability
from service.accounts.models import Account, AccountStatus
from service.accounts.signing import (
    LinkCheck,
    link_expiry,
    link_key,
    links_version,
    verify_manager,
)
from service.agenda.links import person_link
from service.agenda.page import left_open
from service.calendars.models import Calendar
from service.db import utcnow
from service.metrics import definitions as d
from service.metrics.coverage import manager_coverage
from service.metrics.digest import STRIP_COLOURS, coverage_context, digest_context
from service.metrics.reports import DEFAULT_WEEKS, ManagerReport, compute_manager
from service.pairs.models import Pair
from service.people.models import Person
from service.settings import Settings

log = logging.getLogger(__name__)



def weekly_chart(report: ManagerReport, *, width: int = 640, height: int = 180) -> Markup:
    """Stacked bars per week (held / rescheduled / dropped over all reports), as inline SVG."""
    totals = []
    for week in report.weeks:
        held = rescheduled = dropped = 0
        for pair in report.pairs:
            c = pair.metrics.weekly.get(week, d.Counts())
            held += c.held + c.moved
            rescheduled += c.rescheduled
            dropped += c.dropped
        totals.append((week, held, rescheduled, dropped))
    top = max([h + r + x for _, h, r, x in totals] + [1])
    left, bottom, pad = 28, 24, 8
    plot_h = height - bottom - pad
    slot = (width - left - pad) / max(len(totals), 1)
    bar = slot * 0.62
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" '
             f'aria-label="1:1s per week, last {len(totals)} weeks">']
    for tick in sorted({0, top // 2, top}):
        y = pad + plot_h - plot_h * tick / top
        parts.append(f'<line x1="{left}" x2="{width - pad}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#e5e7eb" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" fill="#6b7280" '
                     f'text-anchor="end">{tick}</text>')
    for i, (week, held, rescheduled, dropped) in enumerate(totals):
        x = left + i * slot + (slot - bar) / 2
        y = pad + plot_h
        for value, state in ((held, d.STRIP_HELD), (rescheduled, d.STRIP_RESCHEDULED),
                             (dropped, d.STRIP_DROPPED)):
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(f'<rect class="bar-{state}" x="{x:.1f}" y="{y:.1f}" '
                         f'width="{bar:.1f}" height="{h:.1f}" fill="{STRIP_COLOURS[state]}">'
                         f'<title>{week}: {value} {state}</title></rect>')
        label = week.split("-")[1]
        parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - 8}" font-size="11" '
                     f'fill="#6b7280" text-anchor="middle">{label}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def health(factory: sessionmaker[Session], *, broker_reachable: Callable[[], bool]
           ) -> tuple[bool, dict[str, Any]]:
    """Whether the database and the broker answer, and what needs attention: calendars whose
    last sync failed (`last_error` set) and accounts waiting for re-consent."""
    body: dict[str, Any] = {"database": "ok", "broker": "ok", "calendars_failing": None,
                            "accounts_needing_reconsent": None}
    try:
        with factory() as session:
            session.execute(select(1))
            body["calendars_failing"] = session.scalar(
                select(func.count()).select_from(Calendar)
                .where(Calendar.last_error.is_not(None))) or 0
            body["accounts_needing_reconsent"] = session.scalar(
                select(func.count()).select_from(Account)
                .where(Account.status == AccountStatus.NEEDS_RECONSENT)) or 0
    except SQLAlchemyError as err:
        log.warning("health: database unreachable: %s", type(err).__name__)
        body["database"] = "unreachable"
    if not broker_reachable():
        body["broker"] = "unreachable"
    healthy = body["database"] == body["broker"] == "ok"
    body["status"] = "ok" if healthy else "unavailable"
    return healthy, body


def create_app(settings: Settings, factory: sessionmaker[Session], *,
               clock: Callable[[], datetime] = utcnow,
               broker_reachable: Callable[[], bool] = lambda: True,
               enqueue_write: Callable[[int], object] = lambda _agenda_id: None) -> FastAPI:
    """The FastAPI app: `/managers/{person_id}?sig=...`, `/agenda/...` and `/prep/...`,
    `/healthz` and `/metrics`.

    `broker_reachable` and `enqueue_write` (send an agenda's write) come from the workers
    layer; without `enqueue_write` the reconciler writes a changed agenda at its next round.
    """
    app = FastAPI(title="Rapport", docs_url=None, redoc_url=None, openapi_url=None)
    key = link_key(settings)
    app.include_router(agenda_router(settings, factory, env=_env, key=key,
                                     headers=_PAGE_HEADERS, clock=clock,
                                     enqueue_write=enqueue_write))

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        healthy, body = health(factory, broker_reachable=broker_reachable)
        return JSONResponse(body, status_code=200 if healthy else 503,
                            headers={"Cache-Control": "no-store"})

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(observability.render(), media_type=observability.CONTENT_TYPE)

    @app.get("/managers/{person_id}", response_class=HTMLResponse)
    def manager_page(person_id: int, sig: str | None = Query(default=None),
                     weeks: int = Query(default=DEFAULT_WEEKS, ge=1, le=104),
                     week: str | None = Query(default=None, max_length=10)) -> Any:
        with factory() as session:
            version = links_version(session, person_id=person_id)
        check = LinkCheck.INVALID if version is None else verify_manager(
            settings, person_id, sig, version=version, now=clock(), key=key)
        if check is not LinkCheck.VALID:
            return HTMLResponse(_env.get_template("link_refused.html").render(
                reason=check.value), status_code=403, headers=_PAGE_HEADERS)
        if week is not None:
            try:
                d.parse_iso_week(week)
            except ValueError:
                return PlainTextResponse("The week must look like 2026-W12.", status_code=400)
        now = clock()
        with factory() as session:
            if session.scalar(select(Pair.id).where(Pair.manager_id == person_id).limit(1)) \
                    is None:
                return PlainTextResponse("No 1:1s are known for this person.",
                                         status_code=404)
            report = compute_manager(session, manager_id=person_id, now=now, weeks=weeks,
                                     last_week=week)
            manager = session.get(Person, person_id)
            assert manager is not None
            # the manager's own page: their private preparation links may be on it
            expires = link_expiry(settings, now=now)
            open_rows = [{"report": row.report, "open": row.items,
                          "prep": person_link(settings, pair_id=row.pair_id, person=manager,
                                              expires=expires, private=True, key=key)}
                         for row in left_open(session, manager_id=person_id)]
            coverage = manager_coverage(session, manager_id=person_id,
                                        cadence_days=settings.coverage_cadence_days)
        context = digest_context(report, iso_week=report.weeks[-1])
        context["coverage"] = coverage_context(coverage)  # always shown here, not once
        html = _env.get_template("manager.html").render(
            **context, chart=weekly_chart(report), left_open=open_rows,
            generated=now.strftime("%Y-%m-%d %H:%M UTC"))
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    return app
