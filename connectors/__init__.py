"""Calendar providers behind one contract (`connectors.base.CalendarConnector`).

Shared by every provider, so each folder keeps only what its provider does differently:

- `base`: the contract and the provider-neutral models (events, pages, free/busy, calls);
- `errors`: the one error tree and the plain HTTP status mapping (`error_for_status`);
- `retry`: the one retry policy (Retry-After, jittered backoff, a few seconds per call);
- `calls`: reporting each HTTP attempt to the service's observer;
- `paging`: one sync round as pages, the cursor on the last page only;
- `items`: skipped items and `MalformedEvent` for unreadable provider items;
- `text`: the description size limit and HTML detection (the agenda writer uses them too).

A new provider (say CalDAV) is a new folder (client, raw types, pure parsing, the connector)
built on these; nothing in `service/` changes, because provider quirks (how a window or a
cursor works, how errors and throttling are spelled) stay behind the contract.
"""
