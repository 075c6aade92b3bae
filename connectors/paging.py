"""One sync round as pages, the same way for every provider.

A provider answers a round in pages linked by a next-page token or link (Google
``nextPageToken``, Graph ``@odata.nextLink``); only the last page carries the cursor for the
next round (Google ``nextSyncToken``, Graph ``@odata.deltaLink``). The cursor goes on the last
`ChangePage` only, so the service saves it with the last page's items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from connectors.base import CalendarEvent, ChangePage, SkippedItem
from connectors.errors import ConnectorError


@dataclass(frozen=True)
class RawPage:
    """One provider page, parsed: its items and where the round goes on."""

    events: list[CalendarEvent]
    skipped: list[SkippedItem]
    next_page: str | None  # token or link of the next page of this round
    cursor: str | None  # the next round's cursor (last page only)


def change_pages(fetch: Callable[[str | None], RawPage], *, provider: str,
                 full_sync: bool) -> Iterator[ChangePage]:
    """Follow `fetch(next_page)` from the first page (None) to the last of the round.

    A last page without a cursor is a provider fault: raised, so the calendar shows why it is
    not up to date, instead of every later round silently starting over.
    """
    next_page: str | None = None
    while True:
        page = fetch(next_page)
        if page.next_page:
            yield ChangePage(events=page.events, full_sync=full_sync, skipped=page.skipped)
            next_page = page.next_page
            continue
        if not page.cursor:
            raise ConnectorError(f"{provider}: the last page of a sync round carries no cursor")
        yield ChangePage(events=page.events, cursor=page.cursor, full_sync=full_sync,
                         skipped=page.skipped)
        return
