"""The long API fuzz run: tests/test_api_fuzz.py's site and checks with many more examples and random seeds.

    .venv/bin/python benchmarks/fuzz_bench.py [--examples 5000] [--seed N] [--advisory] [--postgres]

Runs `--examples` generated requests signed out and as many signed in (admin + CSRF token), over a
real store (SQLite, or `--postgres`: a throwaway PostgreSQL server) holding the bundled sample, with a
real SMTP server and a loopback arXiv stand-in. Failures do not stop the run: each distinct one
(operation, check, status) is counted and printed once with a curl command that reproduces it.
`--advisory` also applies Schemathesis' stricter checks (invalid input rejected, valid input
accepted: the document states every constraint), reported apart.
Prints requests per operation and status, the failures, and a JSON summary last.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import random
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed
from hypothesis import strategies as st
from schemathesis import Case, CheckFunction
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.pgserver import PostgresServer  # noqa: E402
from tests.test_api_fuzz import CHECKS, FuzzSite, aim, fuzz_site, keep_session, session_kwargs, strategy  # noqa: E402

STACKS = Path(tempfile.gettempdir()) / "papersift-fuzz-stacks.txt"  # every thread's stack at each hang
ADVISORY: list[CheckFunction] = [negative_data_rejection, positive_data_acceptance]


Key = tuple[str, str, str]  # operation, check, status


class Tally:
    """Statuses per operation and distinct failures, each with one reproducing request."""

    def __init__(self) -> None:
        self.statuses: defaultdict[str, Counter[int]] = defaultdict(Counter)
        self.failures: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.advisory: dict[tuple[str, str, str], dict[str, Any]] = {}

    def record(
        self, into: dict[tuple[str, str, str], dict[str, Any]], case: Case, exc: BaseException, run: str
    ) -> None:
        failures = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
        for failure in failures:
            title = str(getattr(failure, "title", type(failure).__name__))
            status = str(getattr(getattr(failure, "response", None), "status_code", ""))
            key = (case.operation.label, title, status or str(getattr(failure, "message", ""))[:60])
            entry = into.setdefault(key, {"count": 0, "run": run})
            entry["count"] += 1
            if "example" not in entry:
                entry["example"] = case.as_curl_command()  # Schemathesis masks "auth"-like values: see `sent`
                entry["sent"] = repr({"path": case.path_parameters, "query": case.query, "body": case.body})[:2000]
                entry["message"] = str(getattr(failure, "message", failure))[:400]
                if not isinstance(failure, (AssertionError, requests.RequestException)):  # the app's own exception
                    entry["traceback"] = "".join(traceback.format_exception(failure))[-3000:]


def run(site: FuzzSite, examples: int, seed: int, signed_in: bool, advisory: bool, tally: Tally) -> None:
    label = "signed-in" if signed_in else "signed-out"

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # keep going after a failure: collect, do not shrink
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy(site, signed_in), data=st.data())
    def fuzz(case: Case, data: st.DataObject) -> None:
        aimed = aim(site, case, data)
        try:
            response = case.call(**session_kwargs(site, signed_in))
        except Exception as exc:  # no answer within 10 s (a hang), or the app's exception re-raised after its 500
            tally.statuses[case.operation.label][0] += 1
            tally.record(tally.failures, case, exc, label)
            if not isinstance(exc, requests.RequestException):
                return
            with STACKS.open("a") as f:
                f.write(f"\n==== {type(exc).__name__} on {case.as_curl_command()}\n")
                f.flush()
                faulthandler.dump_traceback(f, all_threads=True)
            return
        tally.statuses[case.operation.label][response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (FailureGroup, AssertionError) as exc:  # a check failed: note it, go on
            tally.record(tally.failures, case, exc, label)
        if advisory and not aimed:  # an aimed case may no longer be the invalid one it was generated as
            try:
                case.validate_response(response, checks=ADVISORY)
            except (FailureGroup, AssertionError) as exc:
                tally.record(tally.advisory, case, exc, label)
        keep_session(site, case, signed_in)

    fixed_seed(seed)(fuzz)()


@contextmanager
def store_url(tmp: Path, postgres: bool) -> Iterator[str]:
    """'' (SQLite in the home), or a database on a throwaway PostgreSQL server (tests/pgserver.py)."""
    if not postgres:
        yield ""
        return
    tmp.chmod(0o755)  # the server runs as the `postgres` user when we are root
    server = PostgresServer(tmp / "cluster")
    server.start()
    try:
        yield server.create_database("fuzz")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=5000, help="generated requests per run (two runs)")
    parser.add_argument("--seed", type=int, default=None, help="default: a random seed, printed")
    parser.add_argument("--advisory", action="store_true", help="also the stricter Schemathesis checks")
    parser.add_argument("--postgres", action="store_true", help="the store on a throwaway PostgreSQL server")
    parser.add_argument("--embedder", default="none", help="PAPERSIFT_EMBEDDER of the site (default keyword-only)")
    args = parser.parse_args()
    os.environ["PAPERSIFT_EMBEDDER"] = args.embedder
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    tally = Tally()
    started = time.monotonic()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="papersift-fuzz-")))
        site = stack.enter_context(fuzz_site(tmp / "home", stack.enter_context(store_url(tmp, args.postgres))))
        for signed_in in (False, True):
            run(site, args.examples, seed, signed_in, args.advisory, tally)
        mails = site.mails.count
    elapsed = time.monotonic() - started
    total = sum(sum(c.values()) for c in tally.statuses.values())
    print(f"seed {seed}, {backend}: {total} requests in {elapsed:.0f}s, {mails} confirmation mails sent\n")
    print(f"{'operation':<38} {'requests':>8}  statuses")
    for op, counts in sorted(tally.statuses.items()):
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(counts.items()))
        print(f"{op:<38} {sum(counts.values()):>8}  {statuses}")
    for name, found in (("failures", tally.failures), ("advisory findings", tally.advisory)):
        print(f"\n{len(found)} distinct {name}")
        for (op, title, status), entry in sorted(found.items()):
            print(f"- {op} [{title}] {status} x{entry['count']} ({entry['run']})\n  {entry['message']}")
            print(f"  {entry['example']}\n  sent: {entry['sent']}")
            if "traceback" in entry:
                print("  " + entry["traceback"].replace("\n", "\n  "))
    summary = {
        "seed": seed,
        "backend": backend,
        "requests": total,
        "seconds": round(elapsed, 1),
        "per_operation": {op: dict(sorted(c.items())) for op, c in sorted(tally.statuses.items())},
        "failures": [{"operation": k[0], "check": k[1], "status": k[2], **v} for k, v in tally.failures.items()],
        "advisory": [{"operation": k[0], "check": k[1], "status": k[2], **v} for k, v in tally.advisory.items()],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
