"""Subscriptions and digests under attack (issue 10, items 11-14 and item 5's mail half): a real SMTP server
(aiosmtpd) on loopback, real stores (SQLite, and PostgreSQL where the contract is the store's), the app
in-process and `papersift digest send` as a real subprocess that is killed with SIGKILL mid-send."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from papersift import digest
from papersift.cli import main
from papersift.errors import QueryError, RateLimited
from papersift.ingest import ingest
from papersift.letters import Letters
from papersift.mail import Mailer, MailError, SmtpConfig, build_message
from papersift.models import Paper
from papersift.search import SearchEngine
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.subscriptions import Subscription, Subscriptions, Topic
from papersift.web import create_app
from papersift.web.ratelimit import Limiter

from .conftest import SAMPLE

BASE = "http://testserver"
CONFIRM_SUBJECT = "Confirm your papersift digest subscription"


@dataclass
class Inbox:
    """Refuses the addresses in `refuse` (550), accepts the rest; DATA for an address in `stall` blocks until
    `release` is set, then fails."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    stall: set[str] = field(default_factory=set)
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.stall & set(envelope.rcpt_tos):
            self.stalled.set()
            while not self.release.is_set():  # the sender is mid-send: its process gets SIGKILL now
                await asyncio.sleep(0.05)
            return "451 4.3.0 gave up"  # the killed client never saw a reply: not delivered
        msg = message_from_bytes(envelope.content, policy=policy.SMTP)
        assert isinstance(msg, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]

    def reset(self) -> None:
        self.messages.clear()
        self.stall.clear()
        self.refuse.clear()
        self.stalled.clear()
        self.release.clear()


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    inbox.release.set()
    controller.stop()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("mail-pristine")
    store = Store.open(Settings(home=home).store_url)
    for path in sorted(SAMPLE.iterdir()):
        ingest(store, str(path))
    store.close()
    return home


@dataclass
class Env:
    home: Path
    inbox: Inbox
    env: dict[str, str]
    settings: Settings

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=self.env, catch_exceptions=False)

    def client(self, ip: str = "198.51.100.7") -> TestClient:
        return TestClient(create_app(self.settings), raise_server_exceptions=False, client=(ip, 50000))

    def rows(self) -> int:
        store = Store.open(self.settings.store_url)
        try:
            subs = Subscriptions(store)
            with store.engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(subs.subs)).scalar_one())
        finally:
            store.close()


@pytest.fixture
def env(smtp: tuple[Inbox, int], pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    inbox, port = smtp
    inbox.reset()
    home = tmp_path / "home"
    shutil.copytree(pristine, home)
    values = {
        "PAPERSIFT_HOME": str(home),
        "PAPERSIFT_SECRET_KEY": "test-secret",
        "PAPERSIFT_BASE_URL": BASE,
        "PAPERSIFT_SMTP_HOST": "127.0.0.1",
        "PAPERSIFT_SMTP_PORT": str(port),
        "PAPERSIFT_SMTP_SECURITY": "none",
        "PAPERSIFT_SMTP_FROM": "papersift <digest@example.org>",
        "PAPERSIFT_EMBEDDER": "none",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield Env(home, inbox, values, Settings())
    inbox.release.set()


def _csrf(client: TestClient) -> str:
    token = client.get("/api/me").json()["csrf_token"]
    assert isinstance(token, str)
    return token


def _text(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _confirm_link(msg: EmailMessage) -> str:
    match = re.search(re.escape(BASE) + r"/subscriptions/confirm\?token=[\w.\-]+", _text(msg))
    assert match, _text(msg)
    return match.group(0)


# -- item 11: no mail bombing through the subscribe form ------------------------------------------------


def test_repeated_requests_for_one_address_send_one_mail_then_429(env: Env) -> None:
    body = {"email": "victim@example.org", "kind": "search", "q": "FREE MONEY call +1-555 now"}
    answers = []
    with env.client() as client:
        csrf = _csrf(client)
        for _ in range(30):
            answers.append(client.post("/api/subscriptions", json=body, headers={"X-CSRF-Token": csrf}))
    codes = [r.status_code for r in answers]
    assert codes[0] == 202 and set(codes) <= {202, 429}, codes
    assert 429 in codes, "one client may not post 30 subscriptions in a burst"
    limited = next(r for r in answers if r.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1 and limited.json()["error"]["code"] == "rate_limited"
    accepted = [r.json() for r in answers if r.status_code == 202]
    assert all(a == accepted[0] for a in accepted), "a repeat answers exactly like the first request"
    (mail,) = env.inbox.to("victim@example.org")  # one pending confirmation: one mail
    assert mail["Subject"] == CONFIRM_SUBJECT
    assert "FREE MONEY" not in str(mail["Subject"])
    assert env.rows() == 1


def test_per_address_limit_holds_across_clients_and_processes(env: Env) -> None:
    """Many IPs, two app instances (two processes' worth of in-memory counters): the store still caps it."""
    sent = 0
    refused = 0
    for n in range(12):
        app_client = env.client(ip=f"203.0.113.{n}")  # a fresh app: its own limiter, as another worker
        with app_client as client:
            body = {"email": "Target@Example.org", "kind": "search", "q": f"topic {n}"}
            r = client.post("/api/subscriptions", json=body, headers={"X-CSRF-Token": _csrf(client)})
        assert r.status_code in (202, 429), r.text
        sent += r.status_code == 202
        refused += r.status_code == 429
    mails = env.inbox.to("Target@Example.org")
    assert len(mails) == sent == digest.ADDRESS_MAILS_PER_DAY
    assert refused == 12 - digest.ADDRESS_MAILS_PER_DAY
    assert env.rows() == digest.ADDRESS_MAILS_PER_DAY
    # the address is compared as a mailbox, not as a string: case and +tags do not reset the count
    with env.client(ip="192.0.2.99") as client:
        body = {"email": "target+x@example.ORG", "kind": "trending"}
        r = client.post("/api/subscriptions", json=body, headers={"X-CSRF-Token": _csrf(client)})
    assert r.status_code == 429


def test_the_web_form_is_rate_limited_too(env: Env) -> None:
    with env.client() as client:
        page = client.get("/subscribe")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        codes = []
        for n in range(12):
            form = {"email": f"f{n}@example.org", "kind": "search", "q": "x", "csrf_token": token.group(1)}
            codes.append(client.post("/subscribe", data=form).status_code)
    assert codes[0] == 200 and 429 in codes and set(codes) <= {200, 429}, codes
    assert len(env.inbox.messages) == codes.count(200)


def test_a_confirmation_that_could_not_be_mailed_leaves_no_pending_row(env: Env) -> None:
    """Else the retry would count as a repeat of a pending request and mail nothing for 7 days."""
    env.inbox.refuse.add("late@example.org")
    body = {"email": "late@example.org", "kind": "trending"}
    with env.client() as client:
        csrf = _csrf(client)
        failed = client.post("/api/subscriptions", json=body, headers={"X-CSRF-Token": csrf})
        assert 400 <= failed.status_code < 500 and "refused" in failed.json()["error"]["message"]
        assert env.rows() == 0
        env.inbox.refuse.clear()
        assert client.post("/api/subscriptions", json=body, headers={"X-CSRF-Token": csrf}).status_code == 202
    assert len(env.inbox.to("late@example.org")) == 1 and env.rows() == 1


# -- item 12: a link scanner's GET does not confirm ---------------------------------------------------


def test_confirm_link_get_shows_a_button_and_only_post_confirms(env: Env) -> None:
    with env.client() as client:
        body = {"email": "scan@example.org", "kind": "category", "category": "cs.CV"}
        assert client.post("/api/subscriptions", json=body, headers={"X-CSRF-Token": _csrf(client)}).status_code == 202
        link = _confirm_link(env.inbox.to("scan@example.org")[0])
        token = link.split("token=")[1]
        for _ in range(3):  # a scanner prefetching the link, twice, and a HEAD
            page = client.get(link)
            assert page.status_code == 200 and "<button" in page.text and 'method="post"' in page.text
        client.head(link)
        store = client.app.state.site.store  # type: ignore[attr-defined]
        (sub,) = Subscriptions(store).by_email("scan@example.org")
        assert not sub.confirmed
        assert client.post("/subscriptions/confirm", data={"token": token + "x"}).status_code == 400
        assert not Subscriptions(store).by_email("scan@example.org")[0].confirmed
        done = client.post("/subscriptions/confirm", data={"token": token})
        assert done.status_code == 200 and "Subscription confirmed" in done.text
        assert Subscriptions(store).by_email("scan@example.org")[0].confirmed
        assert "/subscriptions/unsubscribe?token=" in done.text


# -- item 13: header injection --------------------------------------------------------------------------

INJECTIONS = ["hello\r\nBcc: a@evil.example", "x\nBcc: a@evil.example", "x\rSubject: hi", "a\x00b", "a\u2028b"]


@pytest.mark.parametrize("name", ["q", "category", "author", "like", "email"])
def test_crlf_in_any_field_is_422_and_stores_nothing(env: Env, name: str) -> None:
    kind = {"category": "category", "author": "author", "like": "similar"}.get(name, "search")
    base = {
        "email": "inj@example.org",
        "kind": kind,
        "q": "graph",
        "category": "cs.CL",
        "author": "A B",
        "like": "2606.30869",
    }
    with env.client() as client:
        csrf = _csrf(client)
        for bad in INJECTIONS:
            value = "inj@example.org" + bad if name == "email" else bad
            r = client.post("/api/subscriptions", json={**base, name: value}, headers={"X-CSRF-Token": csrf})
            assert r.status_code == 422, (bad, r.status_code, r.text)
            assert r.json()["error"]["code"] in ("invalid_parameter", "invalid_request")
        page = client.get("/subscribe")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        r = client.post("/subscribe", data={**base, name: INJECTIONS[0], "csrf_token": token.group(1)})
        assert r.status_code == 422
    assert env.rows() == 0
    assert env.inbox.messages == []


def test_the_store_and_the_cli_refuse_control_characters_too(env: Env) -> None:
    store = Store.open(env.settings.store_url)
    try:
        with pytest.raises(QueryError, match="control character"):
            Subscriptions(store).create("x@example.org", Topic("search", "a\r\nBcc: b@evil"), "daily", 5)
        with pytest.raises(QueryError, match="control character"):
            Subscriptions(store).create("x@example.org", Topic("author", "a", author="b\nc"), "daily", 5)
    finally:
        store.close()
    r = env.cli("digest", "subscribe", "x@example.org", "--search", "a\r\nBcc: b@evil.example")
    assert r.exit_code == 1 and "control character" in r.output
    r = env.cli("digest", "subscribe", "x@example.org", "--search", "a", "--venue", "v\r\nX: y", "--confirmed")
    assert r.exit_code == 1
    assert env.rows() == 0


@given(value=st.text(max_size=30))
@settings(max_examples=60, deadline=None)
def test_build_message_never_emits_an_injected_header(value: str) -> None:
    fields = {"subject": value, "to": f"a{value}@example.org", "header": value}
    for which in fields:
        to = fields["to"] if which == "to" else "a@example.org"
        subject = value if which == "subject" else "s"
        headers = {"X-Test": value} if which == "header" else {}
        try:
            msg = build_message("papersift <d@example.org>", to, subject, "body", "<p>body</p>", headers)
        except MailError:
            continue
        parsed = message_from_bytes(msg.as_bytes(policy=policy.SMTP), policy=policy.SMTP)
        names = sorted(k.lower() for k in parsed)
        expected = sorted(["from", "to", "subject", "date", "message-id", "mime-version", "content-type"])
        assert names == sorted(expected + (["x-test"] if headers else [])), (which, value, names)
        assert len(parsed.get_all("To") or []) == 1


ANY_CHAR = st.characters(exclude_categories=())  # surrogates too: JSON can carry "\ud800"
BREAKS = st.sampled_from(["\r\n", "\n", "\r", "\x00", "\x0b", "\x1b", "\x85", "\u2028", "\u2029", "\ud800"])
PRINTABLE = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp"))
TEXT = st.one_of(
    st.text(PRINTABLE, min_size=1, max_size=40),  # mostly accepted: the mail must still be clean
    st.text(ANY_CHAR, max_size=40),
    st.builds(lambda a, b, c: a + b + c, st.text(ANY_CHAR, max_size=12), BREAKS, st.text(ANY_CHAR, max_size=12)),
)
FIELDS = ["q", "category", "author", "like", "email", "kind"]


def test_any_text_in_any_field_is_refused_or_mailed_cleanly(env: Env) -> None:
    """Arbitrary text in each field: either 422 and nothing stored or mailed, or one stored row and a mail
    with exactly the usual headers; never a 5xx."""
    serial = iter(range(10**6))
    with env.client() as client:
        csrf = _csrf(client)
        store = client.app.state.site.store  # type: ignore[attr-defined]

        def rows() -> int:
            with store.engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(Subscriptions(store).subs)).scalar_one())

        @given(name=st.sampled_from(FIELDS), value=st.one_of(TEXT, st.sampled_from(["search", "trending"])))
        @settings(max_examples=150, deadline=None)
        @example(name="email", value=" ")  # found by a full run: the address is mailed without the space
        def check(name: str, value: str) -> None:
            env.inbox.messages.clear()
            client.app.state.limiter = Limiter()  # type: ignore[attr-defined]  # per-IP counts: another test
            n = next(serial)
            kind = {"category": "category", "author": "author", "like": "similar"}.get(name, "search")
            body = {"email": f"h{n}@example.org", "kind": kind, "q": "graph", "category": "cs.CL"}
            body.update({"author": "A B", "like": "2606.30869", name: value})
            if name == "email":
                body["email"] = f"{value}{n}@example.org"
            before = rows()
            r = client.post(
                "/api/subscriptions",
                content=json.dumps(body).encode(),  # ASCII escapes: lone surrogates travel as JSON allows
                headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
            )
            assert r.status_code < 500, r.text
            if r.status_code == 422:
                assert rows() == before and env.inbox.messages == []
                return
            assert r.status_code == 202, r.text
            assert rows() == before + 1
            ((rcpts, mail),) = env.inbox.messages
            sent_to = body["email"].strip()  # surrounding spaces of a typed address are not part of it
            assert rcpts == [sent_to]
            assert sorted(k.lower() for k in mail) == sorted(
                ["from", "to", "subject", "date", "message-id", "mime-version", "content-type"]
            )
            assert mail["Subject"] == CONFIRM_SUBJECT and mail["To"] == sent_to

        check()


# -- item 5 (mail half): only http(s) links in a digest -------------------------------------------------


def test_digest_links_are_http_only() -> None:
    letters = Letters(BASE, "s")
    evil = Paper(
        id="2606.99999",
        title="t",
        abstract="a",
        abs_url=" JaVaScRiPt:alert(1)",
        pdf_url="data:text/html,<script>alert(1)</script>",
    )
    good = Paper(id="2606.99998", title="u", abs_url="https://arxiv.org/abs/2606.99998", pdf_url="http://x.org/p.pdf")
    store_sub = Subscription(1, "a@example.org", Topic("trending"), "daily", 5, datetime.now(UTC), True)
    _, text, html = letters.digest(store_sub, "2026-07-01", [evil, good])
    for body in (text, html):
        assert "javascript" not in body.lower() and "data:" not in body
        assert "http://x.org/p.pdf" in body
    assert 'href="https://arxiv.org/abs/2606.99998"' in html
    assert f"{BASE}/papers/2606.99999" in text


# -- item 14: a send killed mid-way is finished by a later run, once -------------------------------------


def _subscribe_confirmed(env: Env, *addresses: str) -> None:
    for address in addresses:
        r = env.cli("digest", "subscribe", address, "-c", "cs.CV", "--max", "3", "--confirmed")
        assert r.exit_code == 0, r.output


def test_kill_9_mid_send_loses_nothing_and_the_next_run_resends_once(env: Env) -> None:
    _subscribe_confirmed(env, "a@example.org", "b@example.org", "c@example.org")
    env.inbox.stall.add("b@example.org")
    exe = Path(sys.executable).with_name("papersift")
    proc = subprocess.Popen(
        [str(exe), "digest", "send", "--date", "2026-06-30"],
        env={**os.environ, **env.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert env.inbox.stalled.wait(120), "the sender never reached b@example.org"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        env.inbox.release.set()
    assert proc.returncode == -signal.SIGKILL
    assert len(env.inbox.to("a@example.org")) == 1 and env.inbox.to("b@example.org") == []
    env.inbox.stall.clear()

    # a run while the claim is fresh leaves it alone (its sender might still be alive) and sends the rest
    r = env.cli("digest", "send", "--date", "2026-06-30")
    assert r.exit_code == 0, r.output
    assert "1 sent" in r.output and "2 already sent" in r.output, r.output
    assert env.inbox.to("b@example.org") == [] and len(env.inbox.to("c@example.org")) == 1

    # the next day's run, once the lease has passed, also finishes yesterday's interrupted digest
    r = env.cli("digest", "send", "--date", "2026-07-01", "--lease", "0")
    assert r.exit_code == 0, r.output
    b_mails = [str(m["Subject"]) for m in env.inbox.to("b@example.org")]
    assert sum("2026-06-30" in s for s in b_mails) == 1, b_mails
    r = env.cli("digest", "send", "--date", "2026-07-01", "--lease", "0")
    assert [str(m["Subject"]) for m in env.inbox.to("b@example.org")] == b_mails, "nothing is sent twice"
    for address in ("a@example.org", "c@example.org"):
        assert sum("2026-06-30" in str(m["Subject"]) for m in env.inbox.to(address)) == 1


# -- the ledger on both backends: concurrent senders and claims ------------------------------------------


def _papers(n: int, day: date) -> list[Paper]:
    return [
        Paper(id=f"2606.{90000 + i}", title=f"paper {i}", categories=["cs.XX"], announced=day, abstract="words")
        for i in range(n)
    ]


def test_concurrent_claims_have_one_winner_and_a_stale_claim_is_taken_over_once(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        subs = Subscriptions(store)
        sub_id = subs.create("l@example.org", Topic("trending"), "daily", 5, confirmed=True)
        lease = timedelta(minutes=15)
        key = (sub_id, "2026-06-30")

        def race(action: Callable[[], object]) -> list[object]:
            barrier = threading.Barrier(8)
            wins: list[object] = []

            def one() -> None:
                barrier.wait()
                got = action()
                if got is not None:
                    wins.append(got)

            threads = [threading.Thread(target=one) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return wins

        def claim() -> object:
            return subs.claim(*key, ["p1"], lease)

        def take_over() -> object:
            return subs.take_over(*key, lease)

        first = race(claim)
        assert len(first) == 1
        assert race(claim) == [] and race(take_over) == [], "a fresh claim is never taken over"
        assert subs.stale_claims(lease) == []
        # the sender died: its claim ages past the lease
        d = subs.sends
        with store.write() as w:
            w.conn.execute(update(d).values(attempted_at=datetime.now(UTC) - timedelta(hours=1)))
        assert [c[:2] for c in subs.stale_claims(lease)] == [key]
        (taken,) = race(take_over)
        assert isinstance(taken, tuple) and taken[1] == ["p1"]
        assert race(claim) == [], "the new claim is fresh again"
        assert not subs.finish(*key, first[0], ok=True), "the dead run's claim no longer counts"  # type: ignore[arg-type]
        assert subs.finish(*key, taken[0], ok=True)
        assert subs.status(*key) == "sent"
        with store.write() as w:
            w.conn.execute(update(d).values(attempted_at=datetime.now(UTC) - timedelta(hours=1)))
        assert race(claim) == [] and race(take_over) == [], "a sent digest is never claimed again"
    finally:
        store.close()


def test_concurrent_identical_requests_make_one_pending_row_and_the_mailbox_cap_holds(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        subs = Subscriptions(store)
        topic = Topic("search", "graph neural networks")
        barrier = threading.Barrier(6)
        results: list[tuple[int, bool]] = []

        def ask(address: str) -> None:
            barrier.wait()
            results.append(subs.request(address, topic, "daily", 5, per_day=3, pending_for=timedelta(days=7)))

        addresses = ["m@example.org", "M@example.org", "m+a@Example.org", "m+b@example.org", "m@example.org"] * 2
        threads = [threading.Thread(target=ask, args=(a,)) for a in addresses[:6]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 6 and [due for _, due in results].count(True) == 1, results
        assert len({sub_id for sub_id, _ in results}) == 1
        for n in range(2):  # other topics count against the mailbox: 3 a day
            assert subs.request(
                "m@example.org", Topic("category", f"cs.{n}"), "daily", 5, per_day=3, pending_for=timedelta(days=7)
            )[1]
        with pytest.raises(RateLimited) as refused:
            subs.request("m+z@example.org", Topic("trending"), "weekly", 5, per_day=3, pending_for=timedelta(days=7))
        assert 1 <= refused.value.retry_after <= 86400
        assert subs.request(
            "other@example.org", Topic("trending"), "weekly", 5, per_day=3, pending_for=timedelta(days=7)
        )[1]
    finally:
        store.close()


def test_two_concurrent_digest_runs_send_each_digest_once(
    store_url: str, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp
    inbox.reset()
    day = date(2026, 6, 30)
    store = Store.open(store_url)
    with store.write() as w:
        w.insert(_papers(5, day))
    subs = Subscriptions(store)
    addresses = [f"r{i}@example.org" for i in range(16)]
    for address in addresses:
        subs.create(address, Topic("category", "cs.XX"), "daily", 3, confirmed=True)
    store.close()
    config = SmtpConfig("127.0.0.1", port, "none", "", "", "papersift <d@example.org>")
    runs: list[digest.DigestRun] = []
    barrier = threading.Barrier(2)

    def sender(n: int) -> None:
        own = Store.open(store_url)
        try:
            s = Settings(home=tmp_path / f"h{n}")
            engine = SearchEngine.open(own, s)
            barrier.wait()
            runs.append(digest.send_digests(own, engine, s, Letters(BASE, "k"), Mailer(config), day))
        finally:
            own.close()

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs) == 2
    assert sorted(rcpt for rcpts, _ in inbox.messages for rcpt in rcpts) == sorted(addresses)
    sent = [label for run in runs for label in run.sent]
    assert len(sent) == len(addresses) and not any(run.failed for run in runs)
