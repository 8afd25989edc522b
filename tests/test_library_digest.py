"""The "for you" digest: a signed-in reader subscribes from the For you page (double opt-in through a real
SMTP server on loopback), `papersift digest send` mails the top new papers for their library through the
ledger: never a paper they saved, none twice, and a second run for the same day sends nothing."""

from __future__ import annotations

import re

from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.store.subscriptions import Subscriptions

from . import test_digest
from .test_digest import BASE, Env, _link, _parts

# the digest tests' fixtures: a real SMTP server on loopback, the ingested sample, a home per test
smtp, pristine, env = test_digest.smtp, test_digest.pristine, test_digest.env


def test_for_you_digest_mails_the_top_new_papers_for_the_library_once(env: Env) -> None:
    with env.client() as client:
        me = client.post("/api/auth/signup", json={"username": "fy_reader", "password": "correct horse"}).json()
        headers = {"X-CSRF-Token": me["csrf_token"]}
        week = client.get("/api/daily_papers?date=2026-07-01&view=day&limit=20").json()["items"]
        liked = [p["id"] for p in week[:5]]
        for pid in liked:
            assert client.post(f"/api/papers/{pid}/save", headers=headers).status_code == 200
        page = client.get("/for-you").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token and 'action="/for-you/subscribe"' in page
        form = {"email": "reader@example.org", "frequency": "daily", "max_papers": "5"}
        assert client.post("/for-you/subscribe", data=form).status_code == 403  # no CSRF token
        done = client.post("/for-you/subscribe", data={**form, "csrf_token": token.group(1)})
        assert done.status_code == 200 and "Check reader@example.org" in done.text, re.findall(
            r"notice[^<]*<|error[^<]*<", done.text
        )
        (confirm_mail,) = env.inbox.to("reader@example.org")
        confirm = _link(_parts(confirm_mail)[0], "/subscriptions/confirm")
        assert client.post("/subscriptions/confirm", data={"token": confirm.split("token=")[1]}).status_code == 200
        # nobody can ask for someone else's For you by address alone: the public form has no such kind
        body = {"email": "x@example.org", "kind": "foryou", "q": "1"}
        api = client.post("/api/subscriptions", json=body, headers=headers)
        assert api.status_code == 422

    env.inbox.messages.clear()
    r = env.cli("digest", "send", "--date", "2026-07-01")
    assert "1 sent, 0 failed" in r.output, r.output
    (mail,) = env.inbox.to("reader@example.org")
    assert "new papers for you" in mail["Subject"] and "5 papers" in mail["Subject"]
    text, _ = _parts(mail)
    sent = re.findall(re.escape(BASE) + r"/papers/([\w.:/-]+?)(?=[\s>)\]]|$)", text)
    assert len(set(sent)) == 5 and not set(sent) & set(liked)
    store = Store.open(env.settings.store_url)
    try:
        assert all(store.get(pid).announced.isoformat() == "2026-07-01" for pid in set(sent))  # type: ignore[union-attr]
        subs = Subscriptions(store)
        (sub,) = [s for s in subs.active() if s.topic.kind == "foryou"]
        assert sub.topic.query == str(Accounts(store).user_by_name("fy_reader").id)  # type: ignore[union-attr]
        assert subs.sent_papers(sub.id) == set(sent)  # the ledger holds exactly what went out
    finally:
        store.close()

    env.inbox.messages.clear()
    again = env.cli("digest", "send", "--date", "2026-07-01")
    assert "0 sent, 0 failed, 1 already sent" in again.output, again.output
    assert env.inbox.messages == []
