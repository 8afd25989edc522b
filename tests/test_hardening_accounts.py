"""Accounts and abuse (issue 10, items 8-10): sessions end at sign-out, sign-in and sign-up are throttled
before any password hashing, user names are unique case-insensitively and after Unicode normalisation."""

from __future__ import annotations

import itertools
import re
import sys
import unicodedata
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from papersift.errors import RateLimited
from papersift.models import Paper
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.migrations import name_key
from papersift.web import auth, create_app
from papersift.web.ratelimit import Limiter
from papersift.web.ratelimit import app_limiter as limiter_for_app

PASSWORD = "correct horse"
COOKIE = "papersift_session"
CHEAP = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}  # real argon2id, ~1 ms instead of ~150 ms


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests hash hundreds of passwords: same algorithm and code path, cheaper parameters."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(**CHEAP))


def test_limiter_refuses_past_the_rule_with_a_retry_time_and_keys_apart() -> None:
    limiter = Limiter()
    for _ in range(3):
        limiter.hit("ip:1", "3/minute")
    with pytest.raises(RateLimited) as refused:
        limiter.hit("ip:1", "3/minute", "too many sign-ins")
    assert 1 <= refused.value.retry_after <= 60
    assert "too many sign-ins" in str(refused.value)
    limiter.hit("ip:2", "3/minute")  # another key has its own count
    with pytest.raises(RateLimited):
        limiter.check("ip:1", "3/minute")
    limiter.clear("ip:1", "3/minute")
    limiter.check("ip:1", "3/minute")
    limiter.hit("ip:1", "3/minute")


# -- a site over a real store --------------------------------------------------------------------------


def _site(tmp_path: Path, store_url: str) -> Iterator[FastAPI]:
    settings = Settings(home=tmp_path / "home", secret_key="test-secret", database_url=store_url)
    store = Store.open(store_url)
    with store.write() as w:
        w.insert([Paper(id="2501.00001", title="A paper to upvote", announced=date(2025, 1, 2))])
    yield create_app(settings, store)
    store.close()


@pytest.fixture
def app(tmp_path: Path, store_url: str) -> Iterator[FastAPI]:
    """On SQLite and on PostgreSQL."""
    yield from _site(tmp_path, store_url)


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[FastAPI]:
    yield from _site(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")


def _client(app: FastAPI, ip: str = "192.0.2.1") -> TestClient:
    return TestClient(app, client=(ip, 50000), raise_server_exceptions=False)


def _signup(client: TestClient, name: str, password: str = PASSWORD) -> str:
    r = client.post("/api/auth/signup", json={"username": name, "password": password})
    assert r.status_code == 201, r.text
    return str(r.json()["csrf_token"])


def _login(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    return client.post("/api/auth/login", json={"username": name, "password": password})


def _csrf_field(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


# -- item 8: signing out ends the session ---------------------------------------------------------------


def test_a_cookie_saved_before_api_logout_is_signed_out_afterwards(app: FastAPI) -> None:
    client = _client(app)
    token = _signup(client, "dora")
    saved = client.cookies.get(COOKIE)
    assert saved and client.get("/api/me").json()["username"] == "dora"
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": token}).status_code == 204
    replay = _client(app, "198.51.100.7")
    replay.cookies.set(COOKIE, saved)
    assert replay.get("/api/me").json()["username"] is None
    vote = replay.post("/api/papers/2501.00001/upvote", headers={"X-CSRF-Token": token})
    assert vote.status_code == 401, vote.text
    # signing in again works, with a fresh session
    assert _login(client, "dora").status_code == 200
    assert client.get("/api/me").json()["username"] == "dora"


def test_page_logout_ends_every_session_of_the_user(sqlite_app: FastAPI) -> None:
    laptop, phone = _client(sqlite_app), _client(sqlite_app, "198.51.100.8")
    _signup(laptop, "erin")
    assert _login(phone, "erin").status_code == 200
    saved = laptop.cookies.get(COOKIE)
    token = _csrf_field(laptop.get("/").text)
    assert laptop.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert phone.get("/api/me").json()["username"] is None
    laptop.cookies.set(COOKIE, saved or "")
    assert laptop.get("/api/me").json()["username"] is None


def test_password_change_needs_the_old_password_and_ends_other_sessions(sqlite_app: FastAPI) -> None:
    laptop, phone = _client(sqlite_app), _client(sqlite_app, "198.51.100.9")
    token = _signup(laptop, "fern")
    assert _login(phone, "fern").status_code == 200
    body = {"old_password": "not my password", "new_password": "battery staple"}
    assert laptop.post("/api/auth/password", json=body, headers={"X-CSRF-Token": token}).status_code == 401
    body["old_password"] = PASSWORD
    assert laptop.post("/api/auth/password", json=body).status_code == 403  # no CSRF token
    changed = laptop.post("/api/auth/password", json=body, headers={"X-CSRF-Token": token})
    assert changed.status_code == 200, changed.text
    assert laptop.get("/api/me").json()["username"] == "fern"  # this session goes on
    assert phone.get("/api/me").json()["username"] is None  # the others end
    fresh = _client(sqlite_app, "198.51.100.10")
    assert _login(fresh, "fern").status_code == 401
    assert _login(fresh, "fern", "battery staple").status_code == 200


# -- item 9: sign-in and sign-up throttling -----------------------------------------------------------------


class CountingHasher(PasswordHasher):
    """The real argon2 hasher, counting its work: throttled attempts must cost none."""

    calls = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        type(self).calls += 1
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        type(self).calls += 1
        return super().verify(hash, password)


def HashCounter(monkeypatch: pytest.MonkeyPatch) -> type[CountingHasher]:
    CountingHasher.calls = 0
    monkeypatch.setattr(auth, "_hasher", CountingHasher(**CHEAP))
    return CountingHasher


def _limit(rule: str) -> int:
    return int(rule.split("/")[0])


def test_login_failures_from_one_address_get_429_before_any_hashing(
    sqlite_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    _signup(_client(sqlite_app, "203.0.113.200"), "gwen")
    attacker = _client(sqlite_app, "203.0.113.1")
    per_ip = _limit(auth.LOGIN_PER_IP)
    for n in range(per_ip):  # a different account each time: only the per-address limit applies
        assert _login(attacker, f"guess{n}", "wrong password").status_code == 401
    hashes = HashCounter(monkeypatch)
    refused = _login(attacker, "gwen")  # even the right password: the address is throttled
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert hashes.calls == 0
    assert _login(_client(sqlite_app, "203.0.113.2"), "gwen").status_code == 200  # others are not


def test_login_failures_on_one_account_from_rotating_addresses_get_429(
    sqlite_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    _signup(_client(sqlite_app, "203.0.113.200"), "hana")
    _signup(_client(sqlite_app, "203.0.113.201"), "ivan")
    per_account = _limit(auth.LOGIN_PER_ACCOUNT)
    for n in range(per_account):
        # case variants count for the same account
        name = "HANA" if n % 2 else "hana"
        assert _login(_client(sqlite_app, f"10.1.{n // 200}.{n % 200}"), name, "wrong").status_code == 401
    hashes = HashCounter(monkeypatch)
    fresh = _client(sqlite_app, "10.2.0.1")
    refused = _login(fresh, "Hana", "wrong")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert hashes.calls == 0
    assert _login(fresh, "ivan").status_code == 200  # the address itself is not throttled


def test_one_address_guessing_one_account_is_stopped_and_a_success_resets_it(sqlite_app: FastAPI) -> None:
    owner = _client(sqlite_app, "203.0.113.50")
    _signup(owner, "jack")
    per_pair = _limit(auth.LOGIN_PER_ACCOUNT_ADDRESS)
    for _ in range(per_pair - 1):
        assert _login(owner, "jack", "typo typo").status_code == 401
    assert _login(owner, "jack").status_code == 200  # the owner gets in, and the typo count is forgotten
    for _ in range(per_pair):
        assert _login(owner, "jack", "typo typo").status_code == 401
    assert _login(owner, "jack").status_code == 429
    assert _login(_client(sqlite_app, "203.0.113.51"), "jack").status_code == 200  # the owner elsewhere is not


def test_signups_from_one_address_are_throttled(sqlite_app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(sqlite_app, "203.0.113.77")
    for n in range(_limit(auth.SIGNUP_PER_IP)):
        assert client.post("/api/auth/signup", json={"username": f"bot{n}", "password": PASSWORD}).status_code == 201
    hashes = HashCounter(monkeypatch)
    refused = client.post("/api/auth/signup", json={"username": "one-more", "password": PASSWORD})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert hashes.calls == 0
    page = _client(sqlite_app, "203.0.113.77")
    token = _csrf_field(page.get("/signup").text)
    form = page.post("/signup", data={"username": "and-more", "password": PASSWORD, "csrf_token": token})
    assert form.status_code == 429 and "try again in" in form.text and int(form.headers["Retry-After"]) >= 1


def test_the_login_page_shows_the_throttle_message_with_429(sqlite_app: FastAPI) -> None:
    page = _client(sqlite_app, "203.0.113.90")
    token = _csrf_field(page.get("/login").text)
    for n in range(_limit(auth.LOGIN_PER_IP)):
        wrong = page.post("/login", data={"username": f"nobody{n}", "password": "wrong", "csrf_token": token})
        assert wrong.status_code == 401
    refused = page.post("/login", data={"username": "nobody", "password": "wrong", "csrf_token": token})
    assert refused.status_code == 429
    assert "try again in" in refused.text and 'name="username"' in refused.text  # the form, with the message
    assert int(refused.headers["Retry-After"]) >= 1


# -- item 10: one account per name, whatever the case or Unicode form ---------------------------------------

NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"


def _compatibility_variants() -> dict[str, list[str]]:
    """Every code point whose NFKC form is one allowed name character (fullwidth, math letters, ...)."""
    out: dict[str, list[str]] = {c: [] for c in NAME_CHARS}
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if ch not in NAME_CHARS and unicodedata.normalize("NFKC", ch) in out:
            out[unicodedata.normalize("NFKC", ch)].append(ch)
    return out


VARIANTS = _compatibility_variants()
names = st.text(alphabet=NAME_CHARS, min_size=3, max_size=32)


@st.composite
def variant_of(draw: st.DrawFn, name: str) -> str:
    """The same name with some letters in the other case and some in a compatibility form."""
    out = []
    for c in name:
        choices = [c, c.swapcase(), *VARIANTS[c], *VARIANTS.get(c.swapcase(), [])]
        out.append(draw(st.sampled_from(choices)))
    return "".join(out)


def test_the_variant_alphabet_is_not_empty() -> None:
    assert "ａ" in VARIANTS["a"] and "\u212a" in VARIANTS["K"]  # fullwidth a, Kelvin sign


_addresses = itertools.count()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), name=names)
def test_case_and_unicode_variants_of_a_name_are_one_account(
    sqlite_app: FastAPI, data: st.DataObject, name: str
) -> None:
    n = next(_addresses)
    ip = f"10.9.{n // 200}.{n % 200}"  # the per-address limits are another test's business
    first = _client(sqlite_app, ip).post("/api/auth/signup", json={"username": name, "password": PASSWORD})
    assert first.status_code in (201, 409), first.text  # 409: an earlier example made this name already
    stored = (
        first.json()["username"]
        if first.status_code == 201
        else _login(_client(sqlite_app, ip), name).json()["username"]
    )
    assert name_key(stored) == name_key(name)
    other = data.draw(variant_of(name))
    dup = _client(sqlite_app, ip).post("/api/auth/signup", json={"username": other, "password": PASSWORD})
    assert dup.status_code == 409, (other, dup.text)
    assert dup.json()["error"]["code"] == "username_taken"
    signed_in = _login(_client(sqlite_app, ip), other)
    assert signed_in.status_code == 200, (other, signed_in.text)
    assert signed_in.json()["username"] == stored


def test_names_outside_the_alphabet_are_refused_not_stored(sqlite_app: FastAPI) -> None:
    client = _client(sqlite_app)
    for bad in ("аlice", "al ice", "ab", "a" * 33, "ali\u0301ce", "ﬀﬀ\u200b"):  # Cyrillic a, space, short, long
        assert client.post("/api/auth/signup", json={"username": bad, "password": PASSWORD}).status_code == 422, bad


def test_password_hashing_is_capped_site_wide_so_a_spread_flood_cannot_take_every_core(
    sqlite_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attempts from many addresses pass the per-address limits; they still get one hashing slot per two
    cores, and an attempt that finds every slot taken is told to come back instead of queueing."""
    _signup(_client(sqlite_app, "203.0.113.150"), "kate")
    taken = [auth.HASH_SLOTS.acquire(blocking=False) for _ in range(auth.HASH_SLOT_COUNT)]
    assert all(taken)
    try:
        hashes = HashCounter(monkeypatch)
        busy = _login(_client(sqlite_app, "203.0.113.151"), "kate")
        assert busy.status_code == 429 and int(busy.headers["Retry-After"]) >= 1, busy.text
        signup = _client(sqlite_app, "203.0.113.152").post(
            "/api/auth/signup", json={"username": "lena", "password": PASSWORD}
        )
        assert signup.status_code == 429
        assert hashes.calls == 0
    finally:
        for _ in taken:
            auth.HASH_SLOTS.release()
    assert _login(_client(sqlite_app, "203.0.113.151"), "kate").status_code == 200


def test_guessing_made_up_names_keeps_one_counter_per_address(sqlite_app: FastAPI) -> None:
    """A spray of names that have no account must not grow the limiter by three counters an attempt."""
    for n in range(30):
        assert _login(_client(sqlite_app, f"10.3.0.{n}"), f"nobody-{n}", "wrong password").status_code == 401
    assert limiter_for_app(sqlite_app).tracked() == 30


_fuzz_addresses = itertools.count()
any_char = st.characters(min_codepoint=0, blacklist_categories=("Cs",))
any_text = st.text(st.one_of(st.sampled_from("\x00\t \u00a0\u200b\u212aａAz0._-"), any_char), max_size=80)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(username=any_text, password=any_text, route=st.sampled_from(["login", "signup"]))
def test_any_typed_name_or_password_gets_a_clean_answer(app: FastAPI, username: str, password: str, route: str) -> None:
    """Whatever reaches the sign-in and sign-up forms (NUL, controls, any script, any length): a 2xx or 4xx
    with the error shape, on both stores, never a 500."""
    n = next(_fuzz_addresses)
    client = _client(app, f"10.7.{n // 200}.{n % 200}")
    r = client.post(f"/api/auth/{route}", json={"username": username, "password": password})
    assert r.status_code in (200, 201, 401, 409, 422), r.text
    if r.status_code >= 400:
        assert set(r.json()["error"]) == {"code", "message"}
    token = _csrf_field(client.get(f"/{route}").text)
    page = client.post(f"/{route}", data={"username": username, "password": password, "csrf_token": token})
    assert page.status_code in (200, 401, 409, 422), page.text[:300]


def _browser_target(base: str, location: str) -> tuple[str, str]:
    """Scheme and host a browser would go to: WHATWG URL parsing drops tabs and newlines and reads '\\'
    as '/' in http(s) URLs, which urljoin alone does not."""
    cleaned = re.sub(r"[\t\n\r]", "", location).replace("\\", "/").strip("\x00\x20")
    parts = urlsplit(urljoin(base, cleaned))
    return parts.scheme, parts.netloc


_next_addresses = itertools.count()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.one_of(
        any_text,
        st.sampled_from(["//evil.example", "/\\evil.example", "/\t/evil.example", "https://evil.example/", "/ok"]),
        st.builds(lambda a, b: a + b, st.sampled_from(["/", "//", "/\\", "\\", "http:", "/%09/", " /"]), any_text),
    )
)
def test_sign_in_never_redirects_off_the_site(sqlite_app: FastAPI, target: str) -> None:
    n = next(_next_addresses)
    client = _client(sqlite_app, f"10.8.{n // 200}.{n % 200}")
    if n == 0:
        _signup(client, "nina")
    token = _csrf_field(client.get("/login").text)
    r = client.post(
        "/login",
        data={"username": "nina", "password": PASSWORD, "csrf_token": token, "next": target[:300]},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]
    assert _browser_target("http://testserver/login", r.headers["location"]) == ("http", "testserver")


def test_signing_in_often_never_locks_the_owner_out(sqlite_app: FastAPI) -> None:
    _signup(_client(sqlite_app, "203.0.113.60"), "olga")
    for n in range(_limit(auth.LOGIN_PER_ACCOUNT) + 5):
        assert _login(_client(sqlite_app, f"10.4.0.{n}"), "olga").status_code == 200
    owner = _client(sqlite_app, "203.0.113.61")
    for _ in range(_limit(auth.LOGIN_PER_ACCOUNT_ADDRESS) + 2):
        assert _login(owner, "olga").status_code == 200
