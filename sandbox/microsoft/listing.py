"""The OData options of the sandbox's event lists (GET /me/events, /me/calendars/{id}/events).

Graph: "The list of events contains single instance meetings and series masters"; occurrences
come only from calendarView and instances
(https://learn.microsoft.com/en-us/graph/api/user-list-events). The sandbox supports what
the connector sends: ``$filter=type eq '<type>'`` (the event's ``type`` property,
https://learn.microsoft.com/en-us/graph/api/resources/event), ``$select``, and ``$top`` /
``$skip`` paging chained by ``@odata.nextLink``, which carries the whole query
(https://learn.microsoft.com/en-us/graph/paging). Any other filter is refused with 400, as
Graph refuses one it cannot evaluate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

LISTED_KINDS = frozenset({"singleInstance", "seriesMaster"})
DEFAULT_TOP = 10  # Graph's default page size for an events list
MAX_TOP = 1000
LINK_SAFE = "$',"  # left as they are in a next link, as Graph writes them ($skip=10)
_TYPE_FILTER = re.compile(r"^\s*type\s+eq\s+'(\w+)'\s*$", re.I)


class QueryError(ValueError):
    """A query option the sandbox cannot evaluate (answered 400 BadRequest)."""


@dataclass(frozen=True)
class ListQuery:
    """An events list request's options, validated."""

    kinds: frozenset[str]
    select: frozenset[str] | None
    top: int
    skip: int

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ListQuery:
        """The options of a request's query string; `QueryError` when one is not supported."""
        return cls(
            kinds=_kinds(params.get("$filter")),
            select=selection(params.get("$select")),
            top=_count(params.get("$top"), DEFAULT_TOP, low=1, high=MAX_TOP),
            skip=_count(params.get("$skip"), 0, low=0, high=None),
        )

    def next_link(self, url: str, params: Mapping[str, str]) -> str:
        """The link to the page after this one: the same query, ``$skip`` moved on."""
        query = {**params, "$top": str(self.top), "$skip": str(self.skip + self.top)}
        return f"{url}?{urlencode(query, quote_via=quote, safe=LINK_SAFE)}"


def selected(data: dict[str, object], select: frozenset[str] | None) -> dict[str, object]:
    """An event resource cut to ``$select`` (``id`` and ``@odata.etag`` always stay)."""
    if select is None:
        return data
    keep = select | {"id", "@odata.etag"}
    return {k: v for k, v in data.items() if k in keep}


def _kinds(value: str | None) -> frozenset[str]:
    if not value:
        return LISTED_KINDS
    match = _TYPE_FILTER.match(value)
    if match is None:
        raise QueryError(f"The sandbox evaluates $filter=type eq '<type>' only, not {value!r}.")
    return LISTED_KINDS & {match.group(1)}  # occurrences are never in an events list


def selection(value: str | None) -> frozenset[str] | None:
    """The property names of a ``$select`` value (None: every property)."""
    names = frozenset(s.strip() for s in (value or "").split(",") if s.strip())
    return names or None


def _count(value: str | None, default: int, *, low: int, high: int | None) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError as err:
        raise QueryError(f"Invalid value {value!r} for a count.") from err
    if number < low or (high is not None and number > high):
        raise QueryError(f"The count {number} is out of range.")
    return number
