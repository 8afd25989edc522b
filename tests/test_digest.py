"""Email digests end to end: a real SMTP server (aiosmtpd) on loopback, `papersift digest ...` through
the CLI, and the emailed confirm/unsubscribe links followed through the app in-process."""

from __future__ import annotations

import functools
import re
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner

from papersift import digest_cli
from papersift.cli import main
from papersift.ingest import ingest
from papersift.letters import BadLink, Letters
from papersift.mail import Mailer
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.store.subscriptions import Subscriptions
from papersift.web import create_app
from papersift.web.auth import site_secret

from .conftest import SAMPLE

BASE = "http://testserver"


@dataclass
class Inbox:
    """An SMTP handler: refuses `reject@` for good, `flaky@` once with a 4xx, accepts the rest."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    flaked: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("reject@"):
            return "550 5.1.1 no such user"
        if address.startswith("flaky@") and address not in self.flaked:
            self.flaked.add(address)
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home holding the ingested sample, copied for each test (ingesting once keeps the tests fast)."""
    home = tmp_path_factory.mktemp("digest-pristine")
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

    def client(self) -> TestClient:
        return TestClient(create_app(self.settings), raise_server_exceptions=False)


@pytest.fixture
def env(smtp: tuple[Inbox, int], pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    inbox, port = smtp
    inbox.messages.clear()
    inbox.flaked.clear()
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
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(digest_cli, "Mailer", functools.partial(Mailer, backoff=0.01))  # fast retries
    yield Env(home, inbox, values, Settings())


def _parts(msg: EmailMessage) -> tuple[str, str]:
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def _link(text: str, path: str) -> str:
    match = re.search(re.escape(BASE + path) + r"\?token=[\w.\-]+", text)
    assert match, f"no {path} link in:\n{text}"
    return match.group(0)


def test_subscribe_confirm_send_once_and_unsubscribe(env: Env) -> None:
    r = env.cli("digest", "subscribe", "alice@example.org", "--search", "3D gaussian splatting", "--max", "5")
    assert r.exit_code == 0, r.output
    (confirm_mail,) = env.inbox.to("alice@example.org")
    assert confirm_mail["Subject"] == "Confirm your papersift digest subscription"  # no requester text
    text, html = _parts(confirm_mail)
    assert "“3D gaussian splatting”" in text
    confirm = _link(text, "/subscriptions/confirm")
    assert confirm.replace("&", "&amp;") in html or confirm in html

    # unconfirmed: nothing goes out
    r = env.cli("digest", "send", "--date", "2026-07-01")
    assert r.exit_code == 0 and "0 sent" in r.output, r.output
    assert len(env.inbox.messages) == 1

    with env.client() as client:
        page = client.get(confirm)  # shows a button: a link scanner's GET confirms nothing
        assert page.status_code == 200 and "Confirm your subscription" in page.text
        done = client.post("/subscriptions/confirm", data={"token": confirm.split("token=")[1]})
        assert done.status_code == 200 and "Subscription confirmed" in done.text
    assert env.cli("digest", "subscribe", "bob@example.org", "-c", "cs.CL", "--max", "3", "--confirmed").exit_code == 0
    weekly = ("--author", "Vishal M. Patel", "--frequency", "weekly", "--confirmed")
    assert env.cli("digest", "subscribe", "carol@example.org", *weekly).exit_code == 0
    assert env.cli("digest", "subscribe", "eve@example.org", "--like", "2606.30869", "--confirmed").exit_code == 0

    env.inbox.messages.clear()
    r = env.cli("digest", "send", "--date", "2026-07-01")
    assert r.exit_code == 0, r.output
    assert "digest: 4 sent, 0 failed, 0 already sent" in r.output
    assert sorted(rcpt for rcpts, _ in env.inbox.messages for rcpt in rcpts) == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
        "eve@example.org",
    ]
    (alice,) = env.inbox.to("alice@example.org")
    assert alice["Subject"] == "papersift daily digest: “3D gaussian splatting” (2026-07-01, 5 papers)"
    assert alice["From"] == "papersift <digest@example.org>"
    assert alice["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = _parts(alice)
    assert "GRay: Ray Tracing 3D Gaussians Near the Speed of Splats" in text
    assert "GRay: Ray Tracing 3D Gaussians Near the Speed of Splats" in html
    assert text.count(f"{BASE}/papers/") == 5
    unsubscribe = _link(text, "/subscriptions/unsubscribe")
    assert alice["List-Unsubscribe"] == f"<{unsubscribe}>"
    (bob,) = env.inbox.to("bob@example.org")
    assert "(2026-07-01, 3 papers)" in bob["Subject"]
    (carol,) = env.inbox.to("carol@example.org")
    assert "weekly digest: papers by Vishal M. Patel (2026-W27" in carol["Subject"]
    assert "Vishal M. Patel" in _parts(carol)[0]

    # a second run for the same period sends nothing
    env.inbox.messages.clear()
    r = env.cli("digest", "send", "--date", "2026-07-01")
    assert r.exit_code == 0 and "0 sent, 0 failed, 4 already sent" in r.output, r.output
    assert env.inbox.messages == []

    # one click from the mail provider: a POST with no session and no CSRF token
    with env.client() as client:
        assert "Unsubscribe" in client.get(unsubscribe).text  # GET only shows a button
        assert Subscriptions(client.app.state.site.store).get(1).active  # type: ignore[attr-defined, union-attr]
        done = client.post(unsubscribe)
        assert done.status_code == 200 and "Unsubscribed" in done.text
    r = env.cli("digest", "send", "--date", "2026-06-30")
    assert "alice@example.org" not in r.output
    assert env.inbox.to("alice@example.org") == []
    assert env.inbox.to("bob@example.org")  # the others go on


def test_a_refused_recipient_does_not_block_the_others(env: Env) -> None:
    for address in ("reject@example.org", "flaky@example.org", "ok@example.org"):
        r = env.cli("digest", "subscribe", address, "--search", "LLM reasoning benchmark", "--confirmed")
        assert r.exit_code == 0, r.output
    r = env.cli("digest", "send", "--date", "2026-06-30")
    assert r.exit_code == 1
    assert "digest: 2 sent, 1 failed" in r.output
    assert "reject@example.org: refused by the SMTP server" in r.output
    assert len(env.inbox.to("flaky@example.org")) == 1  # retried after the 451, delivered once
    assert len(env.inbox.to("ok@example.org")) == 1
    text, _ = _parts(env.inbox.to("ok@example.org")[0])
    assert "HippoSpark: An On-Demand Experience System for LLM Reasoning" in text

    # the failed one is tried again by the next run; the delivered ones are not
    env.inbox.messages.clear()
    r = env.cli("digest", "send", "--date", "2026-06-30")
    assert r.exit_code == 1 and "0 sent, 1 failed, 2 already sent" in r.output, r.output
    assert env.inbox.messages == []


def test_dry_run_and_preview_send_nothing(env: Env) -> None:
    r = env.cli("digest", "subscribe", "dan@example.org", "--search", "diffusion video generation", "--confirmed")
    assert r.exit_code == 0
    r = env.cli("digest", "send", "--dry-run", "--date", "2026-06-30")
    assert r.exit_code == 0 and "1 would be sent (dry run)" in r.output, r.output
    r = env.cli("digest", "preview", "dan@example.org", "--date", "2026-06-30")
    assert r.exit_code == 0
    assert "Subject: papersift daily digest: “diffusion video generation” (2026-06-30" in r.output
    assert "HorizonRelight" in r.output
    assert env.inbox.messages == []
    r = env.cli("digest", "send", "--date", "2026-06-30")
    assert "1 sent" in r.output  # the dry run recorded nothing
    assert env.cli("digest", "preview", "nobody@example.org").exit_code == 1


def test_trending_digest_and_weekly_period(env: Env) -> None:
    store = Store.open(env.settings.store_url)
    accounts = Accounts(store)
    user = accounts.create_user("voter", "x")
    accounts.vote(user.id, "2606.32040")
    store.close()
    assert env.cli("digest", "subscribe", "t@example.org", "--trending", "--confirmed").exit_code == 0
    assert env.cli("digest", "send", "--date", "2026-07-01").exit_code == 0
    (msg,) = env.inbox.to("t@example.org")
    assert "/papers/2606.32040" in _parts(msg)[0]
    # the same paper is never sent again by the next day's digest
    r = env.cli("digest", "send", "--date", "2026-07-02")
    assert "1 empty" in r.output and len(env.inbox.to("t@example.org")) == 1


def test_send_without_subscribers_needs_no_smtp(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAPERSIFT_SMTP_HOST")
    r = CliRunner().invoke(main, ["digest", "send"], catch_exceptions=False)
    assert r.exit_code == 0 and "digest: 0 sent, 0 failed" in r.output
    assert env.cli("digest", "subscribe", "x@example.org", "--trending", "--confirmed").exit_code == 0
    r = CliRunner().invoke(main, ["digest", "send"], catch_exceptions=False)
    assert r.exit_code == 1 and "PAPERSIFT_SMTP_HOST" in r.output


def test_subscribe_refuses_bad_input(env: Env) -> None:
    r = env.cli("digest", "subscribe", "not-an-address", "--search", "x")
    assert r.exit_code == 1 and "does not look like an email address" in r.output
    assert env.cli("digest", "subscribe", "a@example.org").exit_code == 2
    r = env.cli("digest", "send", "--date", "yesterday")
    assert r.exit_code == 2


def test_links_are_signed_and_confirmation_expires(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    letters = Letters(BASE, "test-secret")
    other = Letters(BASE, "another-secret")
    with pytest.raises(BadLink):
        letters.read_manage(other.unsubscribe_url(1).split("token=")[1])
    with pytest.raises(BadLink):
        letters.read_manage(letters.confirm_url(1).split("token=")[1])  # a confirm token is not an unsubscribe one
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(real(self)) - 8 * 86400)
    old = letters.confirm_url(1).split("token=")[1]
    monkeypatch.undo()
    with pytest.raises(BadLink, match="more than 7 days old"):
        letters.read_confirm(old)
    with env.client() as client:
        r = client.get("/subscriptions/confirm", params={"token": old + "x"})
        assert r.status_code == 400 and "damaged" in r.text
        assert client.post("/subscriptions/unsubscribe", params={"token": "forged"}).status_code == 400


def test_web_subscribe_form_needs_csrf_and_mails_a_confirmation(env: Env) -> None:
    with env.client() as client:
        page = client.get("/subscribe", params={"kind": "search", "q": "gaussian splatting"})
        assert page.status_code == 200 and 'value="gaussian splatting"' in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        form = {"email": "web@example.org", "kind": "search", "q": "gaussian splatting", "frequency": "weekly"}
        assert client.post("/subscribe", data=form).status_code == 403
        assert env.inbox.messages == []
        r = client.post("/subscribe", data={**form, "csrf_token": token.group(1)})
        assert r.status_code == 200 and "Check your inbox" in r.text
        bad = client.post("/subscribe", data={**form, "email": "nope", "csrf_token": token.group(1)})
        assert bad.status_code == 422 and "does not look like an email address" in bad.text
        (mail,) = env.inbox.to("web@example.org")
        token = _link(_parts(mail)[0], "/subscriptions/confirm").split("token=")[1]
        confirmed = client.post("/subscriptions/confirm", data={"token": token})
        assert "weekly digest of “gaussian splatting”" in confirmed.text


def test_json_api_subscribe_confirm_read_and_unsubscribe(env: Env) -> None:
    with env.client() as client:
        body = {"email": "api@example.org", "kind": "category", "category": "cs.CV", "frequency": "daily"}
        refused = client.post("/api/subscriptions", json=body)
        assert refused.status_code == 403 and refused.json()["error"]["code"]
        csrf = client.get("/api/me").json()["csrf_token"]
        r = client.post("/api/subscriptions", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 202 and r.json()["status"] == "confirmation_sent"
        bad = client.post("/api/subscriptions", json={**body, "max_papers": 10_000}, headers={"X-CSRF-Token": csrf})
        assert bad.status_code == 422
        (mail,) = env.inbox.to("api@example.org")
        confirm_token = _link(_parts(mail)[0], "/subscriptions/confirm").split("token=")[1]
        confirmed = client.post("/api/subscriptions/confirm", params={"token": confirm_token})
        assert confirmed.status_code == 200
        sub = confirmed.json()
        assert (sub["email"], sub["confirmed"], sub["topic"]) == ("api@example.org", True, "new in cs.CV")
        manage = Letters.for_settings(env.settings, site_secret(env.settings)).unsubscribe_url(sub["id"])
        token = manage.split("token=")[1]
        assert client.get(f"/api/subscriptions/{token}").json()["active"] is True
        gone = client.delete(f"/api/subscriptions/{token}")
        assert gone.status_code == 200 and gone.json()["active"] is False
        again = client.delete(f"/api/subscriptions/{token}")  # idempotent, like the one-click link
        assert again.status_code == 200 and again.json()["active"] is False
        forged = client.get("/api/subscriptions/not-a-signed-token")
        assert forged.status_code in (400, 404) and "error" in forged.json()
