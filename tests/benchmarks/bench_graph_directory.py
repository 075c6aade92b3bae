"""Directory read benchmark: a Microsoft 365 tenant of N people through `GraphDirectory`.

    python tests/benchmarks/bench_graph_directory.py [--people 10000]

The Graph sandbox runs in its own process, seeded with `company_users(N)` and an app
registration (client secret, admin consent); this process reads the whole directory as the
directory sync does: the real MSAL ConfidentialClientApplication for the app-only token,
Rapport's Graph client over HTTPS, GET /users pages of 100 with the manager expanded, each
page's mailbox time zones 20 to a JSON batch. Printed: wall time, Graph calls by kind (from
the sandbox's request log), token requests, and this process's peak RSS (the sandbox's memory
is not in it). Not collected by pytest (the file name does not match test_*.py).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from collections import Counter
from multiprocessing.connection import Connection

from connectors.microsoft.app_auth import AppTokenProvider, tenant_authority
from connectors.microsoft.directory import GraphDirectory


def _serve(people: int, pipe: Connection) -> None:
    from sandbox.microsoft import GraphSandbox
    from sandbox.microsoft.company import company_users

    sandbox = GraphSandbox().start()
    sandbox.seed_company(company_users(people))
    app = sandbox.register_app()
    pipe.send((sandbox.base_url, sandbox.token_url, sandbox.ca_file, app.tenant,
               app.client_id, app.secret))
    pipe.recv()  # read the directory, then ask for the log
    pipe.send(Counter(r.path.rsplit("/", 1)[-1] for r in sandbox.requests()))
    pipe.recv()
    sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    args = parser.parse_args()
    ours, theirs = mp.Pipe()
    server = mp.get_context("spawn").Process(target=_serve, args=(args.people, theirs))
    server.start()
    base_url, token_url, ca_file, tenant, client_id, secret = ours.recv()
    tokens = AppTokenProvider(client_id=client_id, authority=tenant_authority(token_url, tenant),
                              credential=secret, ca_file=ca_file)
    directory = GraphDirectory(token_provider=tokens, api_url=base_url, verify=ca_file)
    started = time.perf_counter()
    seen = zoned = managed = pages = 0
    token = None
    while True:
        page = directory.list_people(token)
        pages += 1
        seen += len(page.people)
        zoned += sum(1 for p in page.people if p.time_zone)
        managed += sum(1 for p in page.people if p.manager_id)
        token = page.next_page_token
        if token is None:
            break
    elapsed = time.perf_counter() - started
    ours.send("log")
    calls = ours.recv()
    ours.send("stop")
    server.join(timeout=30)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"people {seen} in {pages} pages; {zoned} with a mailbox zone, {managed} with a "
          f"manager")
    print(f"wall {elapsed:.1f} s; Graph calls: users {calls['users']}, $batch "
          f"{calls['$batch']}, single mailboxSettings {calls['mailboxSettings']}; token "
          f"requests {calls['token']}")
    print(f"peak RSS of the reading process {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
