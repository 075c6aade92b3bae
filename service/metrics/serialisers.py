"""The stable JSON of `rapport metrics --json`: version 1, fields only ever added."""

from __future__ import annotations

from typing import Any

from service.metrics import definitions as d
from service.metrics.reports import ManagerReport

JSON_VERSION = 1


def _counts_json(c: d.Counts) -> dict[str, int]:
    return {"scheduled": c.scheduled, "held": c.held, "moved": c.moved,
            "rescheduled": c.rescheduled, "cancelled_no_reschedule": c.cancelled,
            "declined": c.declined, "declined_by_report": c.declined_by_report,
            "declined_by_manager": c.declined_by_manager, "series_ended": c.series_ended,
            "unknown": c.unknown, "pending": c.pending}


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def report_json(report: ManagerReport) -> dict[str, Any]:
    """The documented, stable JSON of one manager (version 1; fields are only ever added).

    ``{"version", "manager": {"id", "email", "name", "time_zone"}, "weeks": [...],
    "totals": {counts..., "consistency", "action_items_closed", "balance"},
    "pairs": [{"pair_id", "report": {...}, "counts", "consistency", "streak": {"current",
    "longest"}, "gap": {"longest_days", "worst_vs_cadence", "open_days", "cadence_days"},
    "balance": {"agendas", "areas", "kinds"}, "action_items_closed", "strip": [{"week",
    "state"}], "needs_attention", "reasons", "suggestion"}]}``. Rates are 0..1 or null.
    """
    def balance(b: d.Balance) -> dict[str, Any]:
        return {"agendas": b.agendas, "areas": dict(sorted(b.areas.items())),
                "kinds": dict(sorted(b.kinds.items()))}

    return {
        "version": JSON_VERSION,
        "manager": {"id": report.manager_id, "email": report.email, "name": report.name,
                    "time_zone": report.time_zone},
        "weeks": list(report.weeks),
        "totals": {**_counts_json(report.counts), "consistency": _rate(report.consistency),
                   "action_items_closed": report.action_items_closed,
                   "balance": balance(report.balance)},
        "pairs": [{
            "pair_id": p.pair_id,
            "report": {"id": p.report_id, "email": p.report_email, "name": p.report_name},
            "muted": p.muted,
            "counts": _counts_json(p.metrics.counts),
            "consistency": _rate(p.metrics.consistency),
            "streak": {"current": p.metrics.streak_current,
                       "longest": p.metrics.streak_longest},
            "gap": {"longest_days": p.metrics.gap.days,
                    "worst_vs_cadence": p.metrics.gap.ratio,
                    "open_days": p.metrics.gap.open_days,
                    "cadence_days": p.metrics.gap.cadence_days},
            "balance": balance(p.metrics.balance),
            "action_items_closed": p.metrics.action_items_closed,
            "strip": [{"week": w, "state": s} for w, s in p.metrics.strip],
            "needs_attention": p.needs_attention,
            "reasons": list(p.reasons),
            "suggestion": p.suggestion,
        } for p in report.pairs],
    }
