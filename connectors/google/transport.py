"""The HTTP transport under googleapiclient, safe to share between threads.

google-api-python-client documents that its transport is not: "The httplib2.Http() objects
are not thread-safe ... each thread that you are making requests from must have its own
instance of httplib2.Http()" (https://googleapis.github.io/google-api-python-client/docs/thread_safety.html).
`PerThreadHttp` is one object the client can hold for good (a Google connector lives for the
process and serves every worker thread) that sends each request on the calling thread's own
`httplib2.Http`; one instance can serve every account, so a thread keeps its connections to
the Google host alive across accounts.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httplib2


class PerThreadHttp(httplib2.Http):
    """An `httplib2.Http` whose requests run on a per-thread `httplib2.Http` (same settings).

    Its own connection state is never used: `request` and `close` go to the calling thread's
    instance, created on the thread's first request and dropped with the thread.
    """

    def __init__(self, *, timeout: float = 30.0, ca_bundle: str | Path | None = None) -> None:
        self._ca_certs = str(ca_bundle) if ca_bundle is not None else None
        super().__init__(timeout=timeout, ca_certs=self._ca_certs)
        self._local = threading.local()

    def own(self) -> httplib2.Http:
        """The calling thread's `httplib2.Http`."""
        http: httplib2.Http | None = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = httplib2.Http(timeout=self.timeout,
                                                    ca_certs=self._ca_certs)
        return http

    def request(self, *args: Any, **kwargs: Any) -> Any:
        """httplib2's `Http.request`, on this thread's own connections."""
        return self.own().request(*args, **kwargs)

    def close(self) -> None:
        """Close this thread's connections (other threads keep theirs)."""
        http = getattr(self._local, "http", None)
        if http is not None:
            http.close()
