"""The JSON API fuzzed from its own OpenAPI document with Schemathesis.

Every operation in /api/openapi.json gets generated parameters and bodies, valid and invalid, twice:
signed out, and signed in as the admin with the session's CSRF token (so writes get past 401/403).
The app runs over a real SQLite store holding the bundled sample, a real SMTP server (aiosmtpd) and a
loopback stand-in for the arXiv API. No answer may be a 5xx, every 4xx must be the documented body
`{"error": {"code": str, "message": str}}`, and 2xx bodies must match their declared models.

Generated path ids and tokens are random strings, so half the time a real paper id or a valid
subscription token replaces them: otherwise every call past the router would be a 404.
`benchmarks/fuzz_bench.py` runs the same with thousands of examples and random seeds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
import schemathesis
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, CheckFunction, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from papersift.ingest import ingest
from papersift.letters import Letters
from papersift.settings import Settings
from papersift.store import Store
from papersift.store.subscriptions import Subscriptions, Topic
from papersift.web import create_app
from papersift.web.api import ErrorBody
from papersift.web.auth import site_secret

from .pgserver import free_port

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "src" / "papersift" / "data" / "sample"
ARXIV_ANSWER = HERE / "fixtures" / "arxiv" / "api_idlist.xml"
ADMIN, PASSWORD = "fuzz_admin", "fuzz password 1"


class ErrorShapeViolation(Failure):
    """A 4xx whose body is not the documented `{"error": {"code": str, "message": str}}`."""

    def __init__(self, operation: str, status: int, body: str) -> None:
        super().__init__(
            operation=operation,
            title="Undocumented error shape",
            message=f'{status} answered {body[:300]!r}, not {{"error": {{"code": str, "message": str}}}}',
            case_id=None,
        )
        self.status = status

    @property
    def _unique_key(self) -> str:
        return f"{self.operation}:{self.status}"


def error_shape(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx answer of the API is the one documented error body."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = json.loads(response.content)
        shaped = (
            isinstance(body, dict)
            and set(body) == {"error"}
            and isinstance(body["error"], dict)
            and isinstance(body["error"].get("code"), str)
            and isinstance(body["error"].get("message"), str)
        )
    except ValueError:
        shaped = False
    if not shaped:
        raise ErrorShapeViolation(case.operation.label, response.status_code, response.text)
    return True


# no 5xx; a 4xx only in the error shape, and only a status the document declares; 2xx bodies as declared
CHECKS: list[CheckFunction] = [not_a_server_error, error_shape, status_code_conformance, response_schema_conformance]


# -- the site under test -------------------------------------------------------------------------------


class _Inbox:
    """Accepts every message (confirmation mails of generated subscriptions), keeps a count."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 Message accepted for delivery"


@contextmanager
def _arxiv_stand_in() -> Iterator[str]:
    """A loopback HTTP server answering every arXiv API query with one real recorded answer."""

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            body = ARXIV_ANSWER.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/atom+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(HERE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/query"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class FuzzSite:
    """The app, its OpenAPI schema, real ids and tokens to aim at, and an admin session."""

    app: FastAPI
    schema: OpenApiSchema
    paper_ids: list[str]
    manage_tokens: list[str]
    confirm_tokens: list[str]
    comment_ids: list[int] = field(default_factory=list)
    csrf: str = ""
    cookies: dict[str, str] = field(default_factory=dict)
    mails: _Inbox = field(default_factory=_Inbox)

    def sign_in(self) -> None:
        """Start the admin session (the first account is the admin); later, sign in again if it ended."""
        client = TestClient(self.app)
        r = client.post("/api/auth/signup", json={"username": ADMIN, "password": PASSWORD})
        if r.status_code == 409:
            r = client.post("/api/auth/login", json={"username": ADMIN, "password": PASSWORD})
        assert r.status_code in (200, 201), r.text
        self.csrf = r.json()["csrf_token"]
        self.cookies = dict(client.cookies.items())

    def session_alive(self) -> bool:
        r = TestClient(self.app, cookies=self.cookies).get("/api/me")
        return r.status_code == 200 and r.json()["username"] is not None


@contextmanager
def fuzz_site(home: Path, database_url: str = "") -> Iterator[FuzzSite]:
    """A site over a real store (SQLite in `home`, or `database_url`) holding the bundled sample, real SMTP,
    the arXiv stand-in."""
    inbox = _Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        with _arxiv_stand_in() as arxiv_url:
            settings = Settings(
                home=home,
                database_url=database_url,
                secret_key="fuzz-secret",
                arxiv_api_url=arxiv_url,
                arxiv_api_delay=0,
                http_retries=0,
                smtp_host="127.0.0.1",
                smtp_port=smtp_port,
                smtp_security="none",
                smtp_from="papersift <papers@example.org>",
            )
            store = Store.open(settings.store_url)
            try:
                for path in sorted(SAMPLE.iterdir()):
                    ingest(store, str(path))
                site = _prepare(settings, store)
                site.mails = inbox
                yield site
            finally:
                store.close()
    finally:
        controller.stop()


def _prepare(settings: Settings, store: Store) -> FuzzSite:
    ids = [p.id for _, p in zip(range(200), store.iter_papers(), strict=False)]
    letters = Letters.for_settings(settings, site_secret(settings))
    subs = Subscriptions(store)
    manage, confirm = [], []
    for i, topic in enumerate([Topic("trending"), Topic("search", "diffusion"), Topic("category", "cs.CL")]):
        sub_id = subs.create(f"reader{i}@example.org", topic, "daily", 10, confirmed=i == 0)
        manage.append(_token(letters.unsubscribe_url(sub_id)))
        confirm.append(_token(letters.confirm_url(sub_id)))
    app = create_app(settings, store)
    app.state.site.sync_index()  # BM25 built before the first request, as `papersift ingest` leaves it
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    site = FuzzSite(app=app, schema=schema, paper_ids=ids, manage_tokens=manage, confirm_tokens=confirm)
    site.sign_in()
    admin = app.state.site.accounts.user_by_name(ADMIN)
    comments = app.state.site.comments  # the admin's own, so edits, deletes and hides can succeed
    tops = [comments.add(pid, admin.id, f"comment on {pid}") for pid in ids[:5]]
    replies = [comments.add(top.paper_id, admin.id, "a reply", reply_to=top.id) for top in tops[:2]]
    site.comment_ids = [c.id for c in tops + replies]
    return site


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


# -- one generated call ----------------------------------------------------------------------------------


def aim(site: FuzzSite, case: Case, data: st.DataObject) -> bool:
    """Half the time, point a generated id, token or body field at something that exists or is well-formed:
    random strings alone would stop nearly every call at a 404 or 422, before the code worth fuzzing.
    True when it changed the case (then a generated invalid value may have become valid)."""
    changed = False

    def real(values: list[Any], label: str) -> Any:
        nonlocal changed
        if not data.draw(st.booleans(), label=label):
            return None
        changed = True
        return data.draw(st.sampled_from(values), label=label)

    params = case.path_parameters or {}
    if "paper_id" in params and (value := real(site.paper_ids, "paper_id")):
        params["paper_id"] = value
    if "token" in params and (value := real(site.manage_tokens, "token")):
        params["token"] = value
    if "comment_id" in params and (number := real(site.comment_ids, "comment_id")):
        params["comment_id"] = number
    if case.path.endswith("/confirm") and isinstance(case.query, dict) and (value := real(site.confirm_tokens, "q")):
        case.query["token"] = value
    body = case.body if isinstance(case.body, dict) else {}
    replacements = {
        "id": ["0704.0001", "https://arxiv.org/abs/0704.0001v2", "arXiv:0704.0001", "2401.00001"],
        "email": ["reader@example.org", "Some.One+tag@example.org"],
        "kind": ["trending", "search", "category", "author", "similar"],
        "like": [" ".join(site.paper_ids[:3]), site.paper_ids[-1]],
        "username": [ADMIN, "another_user"],
        "password": [PASSWORD, "password 12345"],
    }
    if isinstance(body.get("parent_id"), int) and (number := real(site.comment_ids, "parent_id")):
        body["parent_id"] = number
    for key, values in replacements.items():
        if isinstance(body.get(key), str) and (value := real(values, key)):
            body[key] = value
    if case.path == "/api/subscriptions" and body and data.draw(st.booleans(), label="well-formed topic"):
        body.update(q="diffusion models", category="cs.CV", author="", like=" ".join(site.paper_ids[:2]))
        changed = True
    query = case.query if isinstance(case.query, dict) else {}
    for container in (query, body):  # a quarter of the text fields: a value that breaks tokenisers and parsers
        for key, value in list(container.items()):
            if isinstance(value, str) and data.draw(st.integers(0, 3), label=f"tricky {key}") == 0:
                container[key] = data.draw(st.sampled_from(TRICKY), label=key)
                changed = True
    return changed


# valid by the schema, rare from a generator, hard on tokenisers and query parsers: blank, punctuation only,
# query syntax, zero-width, combining, right-to-left, ligature, dotted capital I, astral plane
TRICKY = [" ", "\n", "\t ", "-", ",", ".", "*", '"', "'", "()", "a:", ":", "AND", "NOT", "+", "\\", "\u200b"]
TRICKY += ["\u0301", "\u202e", "\ufb01", "\u0130", "\U0001f600", "a" * 500]


def session_kwargs(site: FuzzSite, signed_in: bool) -> dict[str, Any]:
    """What a signed-in client adds to each call: the session cookie and its CSRF token."""
    return {"headers": {"X-CSRF-Token": site.csrf}, "cookies": site.cookies} if signed_in else {}


def call(site: FuzzSite, case: Case, signed_in: bool) -> Response:
    """Send the case in-process and apply the checks (raises schemathesis' FailureGroup on a failure)."""
    response = case.call(**session_kwargs(site, signed_in))
    try:
        case.validate_response(response, checks=CHECKS)
    finally:
        keep_session(site, case, signed_in)
    return response


def keep_session(site: FuzzSite, case: Case, signed_in: bool) -> None:
    """After a generated sign-in or sign-up, make sure the admin session still works (it should)."""
    if signed_in and case.path in ("/api/auth/login", "/api/auth/signup") and not site.session_alive():
        site.sign_in()


def strategy(site: FuzzSite, signed_in: bool) -> st.SearchStrategy[Case]:
    """Valid and invalid requests for every operation in the document. Signed in, not the sign-out: it
    ends every session of the admin (as it should), and signing in again is rate-limited (20 an hour per
    account); test_signed_in_sign_out covers it."""
    schema = site.schema.exclude(method="POST", path="/api/auth/logout") if signed_in else site.schema
    return st.one_of(schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE))


# -- the tests --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzSite]:
    with fuzz_site(tmp_path_factory.mktemp("fuzz")) as built:
        yield built


def test_openapi_document_lists_every_api_operation(site: FuzzSite) -> None:
    labels = {r.ok().label for r in site.schema.get_all_operations() if isinstance(r, Ok)}
    assert {"GET /api/papers/search", "POST /api/submit", "DELETE /api/subscriptions/{token}"} <= labels
    assert len(labels) >= 15


@pytest.mark.parametrize("signed_in", [False, True], ids=["signed-out", "signed-in"])
def test_fuzz_api(site: FuzzSite, signed_in: bool) -> None:
    """A fixed seed in CI (reproducible); benchmarks/fuzz_bench.py runs random seeds and many more."""

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy(site, signed_in), data=st.data())
    def fuzz(case: Case, data: st.DataObject) -> None:
        aim(site, case, data)
        call(site, case, signed_in)

    fuzz()


def test_signed_in_sign_out(tmp_path: Path) -> None:
    """The operation the signed-in fuzz run leaves out, on its own site: 204, and the session is over."""
    with fuzz_site(tmp_path / "home") as own:
        case = own.schema["/api/auth/logout"]["POST"].Case()
        response = call(own, case, signed_in=True)
        assert response.status_code == 204
        assert not own.session_alive()


def test_error_shape_check_rejects_other_bodies(site: FuzzSite) -> None:
    """The custom check itself: a 4xx with FastAPI's default `{"detail": ...}` body is a failure."""
    operation = site.schema["/api/papers/search"]["GET"]
    case = operation.Case(query={"q": "x"})
    good = case.call()
    assert good.status_code == 200
    assert error_shape(None, good, case) is None  # type: ignore[arg-type]
    bad = case.call(params={"limit": 0})
    assert bad.status_code == 422
    assert error_shape(None, bad, case) is True  # type: ignore[arg-type]
    bad.content = b'{"detail": "Not Found"}'
    with pytest.raises(ErrorShapeViolation):
        error_shape(None, bad, case)  # type: ignore[arg-type]


def _planted_site() -> FuzzSite:
    """A tiny app with two planted bugs, fuzzed by the same machinery: the harness must find both."""
    app = FastAPI(openapi_url="/api/openapi.json")

    @app.get("/api/planted/crash", responses={422: {"model": ErrorBody}})
    def crash(q: str = "") -> dict[str, str]:
        if not q.isascii():
            raise RuntimeError("planted: non-ASCII input crashes")
        return {"q": q}

    @app.get("/api/planted/shape", responses={404: {"model": ErrorBody}})
    def shape(n: int = 0) -> Any:
        if n > 10:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return {"n": n}

    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    return FuzzSite(app=app, schema=schema, paper_ids=["x"], manage_tokens=["t"], confirm_tokens=["t"])


@pytest.mark.parametrize(
    ("path", "raised", "failure"),
    [
        # Starlette answers 500, then re-raises the app's exception (for the server's log): it reaches the test
        ("/api/planted/crash", RuntimeError, "planted: non-ASCII input crashes"),
        ("/api/planted/shape", FailureGroup, "Undocumented error shape"),
    ],
)
def test_fuzzing_finds_planted_bugs(path: str, raised: type[BaseException], failure: str) -> None:
    """The fuzz run is not vacuous: a crash and an undocumented 4xx body are found and reported."""
    planted = _planted_site()
    planted.schema = cast(OpenApiSchema, planted.schema.include(path=path))

    @settings(max_examples=100, deadline=None, derandomize=True, database=None, phases=[Phase.generate])
    @given(case=strategy(planted, signed_in=False), data=st.data())
    def fuzz(case: Case, data: st.DataObject) -> None:
        aim(planted, case, data)
        call(planted, case, signed_in=False)

    with pytest.raises(raised) as found:
        fuzz()
    assert failure in repr(found.value.exceptions if isinstance(found.value, FailureGroup) else found.value)
