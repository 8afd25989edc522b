"""Discussion on papers (issue 11 point 5): the store on SQLite and PostgreSQL, the JSON API and the page
forms over a real store: replies one level deep, edit and delete permissions, an admin's hide, rate
limits, the size limit, CSRF, comment counts on cards and the paper page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import select

from papersift.errors import PaperNotFound, QueryError
from papersift.models import Paper
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.store.comments import MAX_CHARS, CommentNotFound, Comments, NotYourComment
from papersift.web import auth, create_app
from papersift.web.ratelimit import Limiter

from .old_store import store_at

PASSWORD = "correct horse"
PAPER, OTHER, HIDDEN = "2501.00001", "2501.00002", "2501.00003"
CHEAP = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}  # real argon2id, cheaper parameters


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(**CHEAP))


def _fill(store: Store) -> None:
    with store.write() as w:
        w.insert(
            [
                Paper(id=PAPER, title="Attention for discussion", announced=date(2025, 1, 2)),
                Paper(id=OTHER, title="Another listed paper", announced=date(2025, 1, 2)),
                Paper(id=HIDDEN, title="A hidden paper", announced=date(2025, 1, 2)),
            ]
        )
        w.set_hidden(HIDDEN, True)


# -- the store, on both backends --------------------------------------------------------------------------


@pytest.fixture
def filled(store: Store) -> Store:
    _fill(store)
    return store


def _users(store: Store, *names: str) -> list[int]:
    accounts = Accounts(store)
    return [accounts.create_user(name, "x").id for name in names]


def test_replies_attach_one_level_deep_and_counts_follow(filled: Store) -> None:
    comments = Comments(filled)
    ann, bob = _users(filled, "ann", "bob")
    top = comments.add(PAPER, ann, "first")
    reply = comments.add(PAPER, bob, "a reply", reply_to=top.id)
    deeper = comments.add(PAPER, ann, "a reply to the reply", reply_to=reply.id)
    assert reply.parent_id == top.id
    assert deeper.parent_id == top.id  # not reply.id: one level only
    second = comments.add(PAPER, bob, "second\r\nline  \n\n")
    assert second.body == "second\nline"
    [one, two] = comments.threads(PAPER)
    assert (one.comment.id, [r.id for r in one.replies]) == (top.id, [reply.id, deeper.id])
    assert (two.comment.id, two.replies, two.comment.username) == (second.id, [], "bob")
    assert comments.counts([PAPER, OTHER, "no such paper", "\x00"]) == {PAPER: 4}
    with pytest.raises(CommentNotFound):  # a reply names a comment of another paper
        comments.add(OTHER, bob, "wrong thread", reply_to=top.id)
    with pytest.raises(PaperNotFound):
        comments.add(HIDDEN, bob, "on a hidden paper")
    with pytest.raises(PaperNotFound):
        comments.add("2501.99999", bob, "on no paper")


def test_only_the_author_edits_or_deletes_and_deleted_threads_keep_their_replies(filled: Store) -> None:
    comments = Comments(filled)
    ann, bob = _users(filled, "ann", "bob")
    top = comments.add(PAPER, ann, "original")
    reply = comments.add(PAPER, bob, "reply", reply_to=top.id)
    for action in (lambda: comments.edit(top.id, bob, "hijacked"), lambda: comments.delete(top.id, bob)):
        with pytest.raises(NotYourComment):
            action()
    edited = comments.edit(top.id, ann, "**better**")
    assert (edited.body, edited.edited_at is not None) == ("**better**", True)
    comments.delete(top.id, ann)  # has a reply: kept as a placeholder, its text erased
    [thread] = comments.threads(PAPER)
    assert (thread.comment.deleted, thread.comment.body, [r.id for r in thread.replies]) == (True, "", [reply.id])
    assert comments.counts([PAPER]) == {PAPER: 1}
    for action in (lambda: comments.edit(top.id, ann, "back"), lambda: comments.add(PAPER, bob, "x", top.id)):
        with pytest.raises(CommentNotFound):
            action()
    comments.delete(reply.id, bob)  # the last reply of a deleted comment takes the placeholder with it
    assert comments.threads(PAPER) == []
    with filled.engine.connect() as conn:
        assert conn.execute(select(comments.comments.c.id)).all() == []
    lone = comments.add(PAPER, ann, "lonely")
    comments.delete(lone.id, ann)
    with pytest.raises(CommentNotFound):
        comments.get(lone.id)


def test_hidden_comments_are_for_admins_only_and_hiding_keeps_the_text(filled: Store) -> None:
    comments = Comments(filled)
    ann, bob = _users(filled, "ann", "bob")
    spam = comments.add(PAPER, ann, "buy now")
    reply = comments.add(PAPER, bob, "this is spam", reply_to=spam.id)
    lone = comments.add(PAPER, ann, "more spam")
    comments.set_hidden(spam.id, True)
    comments.set_hidden(lone.id, True)
    reader = comments.threads(PAPER)
    assert [(t.comment.id, t.comment.body) for t in reader] == [(spam.id, "")]  # a placeholder for its reply
    assert [r.id for r in reader[0].replies] == [reply.id]
    admin = comments.threads(PAPER, moderator=True)
    assert [(t.comment.body, t.comment.hidden) for t in admin] == [("buy now", True), ("more spam", True)]
    assert comments.counts([PAPER]) == {PAPER: 1}
    with pytest.raises(CommentNotFound):
        comments.add(PAPER, bob, "replying to hidden", reply_to=spam.id)
    assert comments.set_hidden(spam.id, False).body == "buy now"
    assert comments.counts([PAPER]) == {PAPER: 2}


UNACCEPTABLE = [
    ("   \n\t ", "empty"),
    ("x" * (MAX_CHARS + 1), f"at most {MAX_CHARS:,} characters long; this one has {MAX_CHARS + 1:,}"),
    ("nul \x00 here", "NUL"),
    ("lone \ud800 surrogate", "surrogate"),
]


def test_unacceptable_text_is_refused_with_a_message_and_nothing_stored(filled: Store) -> None:
    comments = Comments(filled)
    [ann] = _users(filled, "ann")
    for text, message in UNACCEPTABLE:
        with pytest.raises(QueryError, match=message):
            comments.add(PAPER, ann, text)
    assert comments.threads(PAPER) == []
    assert comments.add(PAPER, ann, "x" * MAX_CHARS).body == "x" * MAX_CHARS  # the limit itself is allowed


def test_comment_changes_move_the_page_cache_revision(filled: Store) -> None:
    comments = Comments(filled)
    [ann] = _users(filled, "ann")
    before = filled.revisions()
    made = comments.add(PAPER, ann, "hello")
    after_add = filled.revisions()
    comments.set_hidden(made.id, True)
    assert before < after_add < filled.revisions()


def test_migration_8_adds_comments_to_a_store_from_the_previous_release(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with store_at(url, 7):
        pass
    store = Store.open(url)
    try:
        _fill(store)
        [ann] = _users(store, "ann")
        Comments(store).add(PAPER, ann, "works after the upgrade")
        assert Comments(store).counts([PAPER]) == {PAPER: 1}
        assert len(store.revisions()) == 3
    finally:
        store.close()


# -- the API and the pages, over a real store --------------------------------------------------------------


def _site(tmp_path: Path, store_url: str) -> Iterator[FastAPI]:
    settings = Settings(home=tmp_path / "home", secret_key="test-secret", database_url=store_url)
    store = Store.open(store_url)
    _fill(store)
    yield create_app(settings, store)
    store.close()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    yield from _site(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def both_app(tmp_path: Path, store_url: str) -> Iterator[FastAPI]:
    yield from _site(tmp_path, store_url)


class Reader:
    """A signed-up user with a client from its own address."""

    def __init__(self, app: FastAPI, name: str, ip: str) -> None:
        self.client = TestClient(app, client=(ip, 50000), raise_server_exceptions=False, follow_redirects=False)
        r = self.client.post("/api/auth/signup", json={"username": name, "password": PASSWORD})
        assert r.status_code == 201, r.text
        self.csrf = str(r.json()["csrf_token"])
        self.headers = {"X-CSRF-Token": self.csrf}

    def post(self, paper: str, body: str, parent_id: int | None = None) -> Any:
        return self.client.post(
            f"/api/papers/{paper}/comments", json={"body": body, "parent_id": parent_id}, headers=self.headers
        )


def _error(r: Any, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return str(body["error"]["message"])


def test_api_thread_with_permissions_and_admin_hide(both_app: FastAPI) -> None:
    admin = Reader(both_app, "admin", "192.0.2.1")  # the first account is the admin
    ann = Reader(both_app, "ann", "192.0.2.2")
    bob = Reader(both_app, "bob", "192.0.2.3")
    top = ann.post(PAPER, "Nice **result**; see [code](https://example.org/x)")
    assert top.status_code == 201, top.text
    made = top.json()
    assert made["author"] == "ann"
    assert "<strong>result</strong>" in made["html"] and 'rel="nofollow ugc noopener"' in made["html"]
    reply = bob.post(PAPER, "reply", made["id"]).json()
    deeper = ann.post(PAPER, "reply to reply", reply["id"]).json()
    assert reply["parent_id"] == deeper["parent_id"] == made["id"]

    listed = bob.client.get(f"/api/papers/{PAPER}/comments").json()
    assert listed["count"] == 3 and [c["id"] for c in listed["items"]] == [made["id"]]
    assert [r["id"] for r in listed["items"][0]["replies"]] == [reply["id"], deeper["id"]]

    # another user may neither edit nor delete; the author may
    url = f"/api/comments/{made['id']}"
    _error(bob.client.patch(url, json={"body": "mine now"}, headers=bob.headers), 403, "forbidden")
    _error(bob.client.delete(url, headers=bob.headers), 403, "forbidden")
    _error(ann.client.patch(url, json={"body": "no token"}), 403, "forbidden")
    edited = ann.client.patch(f"/api/comments/{made['id']}", json={"body": "edited"}, headers=ann.headers)
    assert edited.status_code == 200 and edited.json()["edited_at"] is not None

    # only an admin hides; readers then see a placeholder (it has replies), the admin the text
    _error(ann.client.post(f"{url}/hide", json={"hidden": True}, headers=ann.headers), 403, "forbidden")
    hidden = admin.client.post(f"/api/comments/{made['id']}/hide", json={"hidden": True}, headers=admin.headers)
    assert hidden.status_code == 200 and hidden.json()["hidden"] is True
    seen = bob.client.get(f"/api/papers/{PAPER}/comments").json()
    assert seen["count"] == 2
    assert (seen["items"][0]["body"], seen["items"][0]["author"], seen["items"][0]["html"]) == ("", None, "")
    assert admin.client.get(f"/api/papers/{PAPER}/comments").json()["items"][0]["body"] == "edited"

    # delete: 204, then the reply list shrinks; a deleted comment is gone for edits
    assert bob.client.delete(f"/api/comments/{reply['id']}", headers=bob.headers).status_code == 204
    _error(bob.client.delete(f"/api/comments/{reply['id']}", headers=bob.headers), 404, "not_found")
    signed_out = TestClient(both_app, raise_server_exceptions=False)
    _error(signed_out.post(f"/api/papers/{PAPER}/comments", json={"body": "anon"}), 401, "auth_required")
    _error(ann.post(HIDDEN, "on a hidden paper"), 404, "not_found")
    _error(ann.post(PAPER, "x" * (MAX_CHARS + 1)), 422, "invalid_request")
    _error(ann.post(PAPER, "to nowhere", 2**31 - 1), 404, "not_found")
    _error(ann.post(PAPER, "out of range", 2**31), 422, "invalid_parameter")


def test_posting_is_rate_limited_per_user_and_per_address(app: FastAPI) -> None:
    ann = Reader(app, "ann", "192.0.2.2")
    for i in range(5):
        assert ann.post(PAPER, f"comment {i}").status_code == 201
    refused = ann.post(PAPER, "one too many")
    assert "commenting faster" in _error(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert app.state.site.comments.counts([PAPER]) == {PAPER: 5}  # the refused one was not stored
    # the address limit holds across accounts: three more users from ann's address get 15 in a minute
    others = [Reader(app, f"user{i}", "192.0.2.2") for i in range(3)]
    sent = [o.post(PAPER, f"from {o.csrf[:4]} {i}").status_code for o in others for i in range(5)]
    assert sent.count(201) == 10 and sent[-5:].count(429) == 5
    Reader(app, "elsewhere", "192.0.2.9").post(PAPER, "another address is fine").raise_for_status()


def test_refused_text_does_not_use_up_the_allowance(app: FastAPI) -> None:
    ann = Reader(app, "ann", "192.0.2.2")
    for _ in range(8):
        _error(ann.post(PAPER, "x" * (MAX_CHARS + 1)), 422, "invalid_request")
        _error(ann.post(PAPER, " "), 422, "invalid_request")
    assert [ann.post(PAPER, f"fine {i}").status_code for i in range(6)] == [201] * 5 + [429]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.text(max_size=60) | st.sampled_from(["", " ", "x" * (MAX_CHARS + 1), "a\x00b", "<script>x</script>"]),
    parent=st.text(max_size=12) | st.integers(-3, 2**40).map(str),
    csrf_ok=st.booleans(),
)
def test_any_form_input_gets_a_page_never_a_500_and_keeps_the_text(
    app: FastAPI, body: str, parent: str, csrf_ok: bool
) -> None:
    """Generated form fields on the comment form: a redirect to the new comment, or the form again with a
    reader's message and the text; the store holds exactly the accepted comments."""
    app.state.limiter = Limiter()  # each example starts with a fresh allowance
    if not hasattr(app.state, "test_reader"):
        app.state.test_reader = Reader(app, "ann", "192.0.2.2")
    ann: Reader = app.state.test_reader
    before = app.state.site.comments.counts([PAPER]).get(PAPER, 0)
    data = {"body": body, "parent_id": parent, "csrf_token": ann.csrf if csrf_ok else ""}
    r = ann.client.post(f"/papers/{PAPER}/comments", data=data)
    after = app.state.site.comments.counts([PAPER]).get(PAPER, 0)
    if r.status_code == 303:
        assert after == before + 1 and re.search(r"#c\d+$", r.headers["location"])
    else:
        assert r.status_code in (403, 404, 422), r.text
        assert after == before and 'class="alert"' in r.text
        if body.strip() and "\x00" not in body and "\r" not in body:
            assert str(escape(body.strip()))[:40] in r.text  # as the page's autoescaping writes it


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_page_forms_post_and_redirect_and_keep_refused_text(app: FastAPI) -> None:
    ann = Reader(app, "ann", "192.0.2.2")
    page = ann.client.get(f"/papers/{PAPER}")
    assert 'id="comments"' in page.text and "0 comments" in page.text
    token = _csrf(page.text)
    r = ann.client.post(f"/papers/{PAPER}/comments", data={"body": "Hello *world*", "csrf_token": token})
    assert r.status_code == 303
    new_id = int(r.headers["location"].rsplit("#c", 1)[1])
    assert r.headers["location"] == f"/papers/{PAPER}#c{new_id}"
    r = ann.client.post(
        f"/papers/{PAPER}/comments", data={"body": "reply", "parent_id": str(new_id), "csrf_token": token}
    )
    assert r.status_code == 303
    page = ann.client.get(f"/papers/{PAPER}").text
    assert "<em>world</em>" in page and "2 comments" in page and 'class="replies"' in page

    too_long = "word " * 1200
    r = ann.client.post(f"/papers/{PAPER}/comments", data={"body": too_long, "csrf_token": token})
    assert r.status_code == 422
    assert f"at most {MAX_CHARS:,} characters" in r.text and too_long.strip() in r.text  # the text is kept
    r = ann.client.post(f"/papers/{PAPER}/comments", data={"body": "no token here"})
    assert r.status_code == 403 and "no token here" in r.text
    r = ann.client.post(f"/papers/{PAPER}/comments", data={"body": "bad", "parent_id": "x", "csrf_token": token})
    assert r.status_code == 422 and "reply does not point" in r.text

    r = ann.client.post(f"/comments/{new_id}/edit", data={"body": "Hello **edited**", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"].endswith(f"#c{new_id}")
    bob = Reader(app, "bob", "192.0.2.3")
    bob_token = _csrf(bob.client.get(f"/papers/{PAPER}").text)
    r = bob.client.post(f"/comments/{new_id}/edit", data={"body": "hijack", "csrf_token": bob_token})
    assert r.status_code == 403 and "only its author" in r.text
    assert bob.client.post(f"/comments/{new_id}/delete", data={"csrf_token": bob_token}).status_code == 403
    assert ann.client.post(f"/comments/{new_id}/delete", data={"csrf_token": token}).status_code == 303
    page = bob.client.get(f"/papers/{PAPER}").text
    assert "[deleted]" in page and "edited" not in page.split('id="comments"')[1].split("[deleted]")[0]
    assert bob.client.get(f"/comments/{new_id}/delete").status_code == 405

    # rate limited: 429 with the text kept and Retry-After
    for i in range(3):
        ann.client.post(f"/papers/{PAPER}/comments", data={"body": f"filler {i}", "csrf_token": token})
    r = ann.client.post(f"/papers/{PAPER}/comments", data={"body": "keep me please", "csrf_token": token})
    assert r.status_code == 429 and "keep me please" in r.text and int(r.headers["Retry-After"]) >= 1


def test_signed_out_readers_see_comments_and_a_sign_in_link_and_session_loss_keeps_text(app: FastAPI) -> None:
    ann = Reader(app, "ann", "192.0.2.2")
    ann.post(PAPER, "visible to all")
    anon = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    page = anon.get(f"/papers/{PAPER}").text
    assert "visible to all" in page and "Sign in</a> to join" in page and "<textarea" not in page
    token = _csrf(page)  # the session's token, but no one signed in
    r = anon.post(f"/papers/{PAPER}/comments", data={"body": "typed before my session ended", "csrf_token": token})
    assert r.status_code == 401 and "typed before my session ended" in r.text and "sign in again" in r.text


def test_admin_hides_and_unhides_from_the_page(app: FastAPI) -> None:
    admin = Reader(app, "admin", "192.0.2.1")
    ann = Reader(app, "ann", "192.0.2.2")
    made = ann.post(PAPER, "spam spam spam").json()
    token = _csrf(admin.client.get(f"/papers/{PAPER}").text)
    assert f'action="/comments/{made["id"]}/hide"' in admin.client.get(f"/papers/{PAPER}").text
    assert ann.client.post(f"/comments/{made['id']}/hide", data={"csrf_token": ann.csrf}).status_code == 403
    r = admin.client.post(f"/comments/{made['id']}/hide", data={"csrf_token": token, "hidden": "1"})
    assert r.status_code == 303
    assert "spam spam spam" not in ann.client.get(f"/papers/{PAPER}").text
    admin_page = admin.client.get(f"/papers/{PAPER}").text
    assert "spam spam spam" in admin_page and ">hidden</span>" in admin_page and ">Unhide</button>" in admin_page
    admin.client.post(f"/comments/{made['id']}/hide", data={"csrf_token": token, "hidden": "0"})
    assert "spam spam spam" in ann.client.get(f"/papers/{PAPER}").text
    hidden_paper = admin.client.get(f"/papers/{HIDDEN}").text  # only an admin sees it; no one can comment
    assert "discussion is closed" in hidden_paper and 'id="comment-new"' not in hidden_paper


def test_cards_show_comment_counts_also_on_cached_pages(app: FastAPI) -> None:
    anon = TestClient(app, raise_server_exceptions=False)
    ann = Reader(app, "ann", "192.0.2.2")

    def card_of(html: str, paper: str) -> str:
        start = html.index(f'data-href="/papers/{paper}"')
        return html[start : html.index("</article>", start)]

    first = anon.get("/?date=2025-01-02").text  # cached for signed-out readers from here on
    assert "comment" not in card_of(first, PAPER)
    ann.post(PAPER, "one")
    ann.post(PAPER, "two")
    cached = anon.get("/?date=2025-01-02").text
    assert f'href="/papers/{PAPER}#comments">2 comments</a>' in card_of(cached, PAPER)
    assert "comment" not in card_of(cached, OTHER)
    ann.post(OTHER, "just one")
    signed_in = ann.client.get("/?date=2025-01-02").text
    assert ">1 comment</a>" in card_of(signed_in, OTHER)
    assert "Discussion (2)" in anon.get(f"/papers/{PAPER}").text
    # the API carries the same counts, on lists and on one paper
    daily = {it["id"]: it["comments"] for it in anon.get("/api/daily_papers?date=2025-01-02").json()["items"]}
    assert daily == {PAPER: 2, OTHER: 1}
    assert anon.get(f"/api/papers/{PAPER}").json()["comments"] == 2
