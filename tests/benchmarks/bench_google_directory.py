"""Google Workspace directory benchmark: list a company of N people through `GoogleDirectory`.

    python tests/benchmarks/bench_google_directory.py [--sizes 1000,10000] [--page 500]

Not collected by pytest. For each size, the sandbox (its own process, so its CPU and memory
are not the product's) holds a generated company (`sandbox.google.company.build_company`:
three levels of managers, org units, one suspended person); the product side lists every
page through the real google-auth service-account credentials (JWT-bearer grant) and
google-api-python-client ``users.list`` at `--page` people a page (500 is Google's maximum),
as the directory sync reads it. Printed: wall time, provider calls (token + users.list),
people per second, and the growth of the product process's peak RSS while listing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from multiprocessing.connection import Connection
from typing import Any


def _serve(size: int, pipe: Connection) -> None:
    """The sandbox process: seed the company, hand over a key and the URL, serve until told."""
    from connectors.google.auth import DIRECTORY_USERS_SCOPE
    from sandbox.google import GoogleSandbox
    from sandbox.google.company import build_company
    from sandbox.team import Population

    company = build_company(size)
    sandbox = GoogleSandbox(population=Population((), ()), directory=company.directory)
    sandbox.start()
    key = sandbox.mint_service_account_key()
    sandbox.authorise_delegation(key["client_id"], [DIRECTORY_USERS_SCOPE])
    pipe.send((key, sandbox.base_url.removesuffix("calendar/v3/"), company.admin))
    pipe.recv()
    calls = len(sandbox.requests())
    pipe.send(calls)
    sandbox.stop()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(size: int, page: int) -> dict[str, Any]:
    """List every person of a company of `size` once; the figures."""
    from connectors.google.auth import DIRECTORY_USERS_SCOPE, delegated_credentials
    from connectors.google.directory import GoogleDirectory

    here, there = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(size, there), daemon=True)
    server.start()
    key, url, admin = here.recv()
    directory = GoogleDirectory(delegated_credentials(key, admin, [DIRECTORY_USERS_SCOPE]),
                                api_url=url, page_size=page)
    rss_before = _rss_mb()
    started = time.perf_counter()
    people = 0
    token: str | None = None
    while True:
        result = directory.list_people(token)
        people += len(result.people)
        token = result.next_page_token
        if token is None:
            break
    seconds = time.perf_counter() - started
    here.send("done")
    calls = here.recv()
    server.join(10)
    return {"size": size, "people": people, "seconds": seconds, "calls": calls,
            "per_second": people / seconds, "rss_growth_mb": _rss_mb() - rss_before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--page", type=int, default=500)
    args = parser.parse_args()
    print(f"{'people':>8} {'listed':>8} {'seconds':>8} {'calls':>6} {'people/s':>9} "
          f"{'RSS + MB':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        r = run(size, args.page)
        print(f"{r['size']:>8} {r['people']:>8} {r['seconds']:>8.2f} {r['calls']:>6} "
              f"{r['per_second']:>9.0f} {r['rss_growth_mb']:>9.1f}")


if __name__ == "__main__":
    main()
