"""Email digest subscriptions on the web, managed by emailed links alone (no account needed).

Subscribing posts a CSRF-protected form and mails a confirmation link (double opt-in). Both mailed links
only show a button on GET, and act on POST: mail scanners and link previews fetch GET links, and must
neither confirm (that would make double opt-in single) nor unsubscribe. Those POSTs need no session or
CSRF token, on purpose: RFC 8058 one-click unsubscribe comes from the mail provider, and the signed
token is itself the proof that the request came from the subscriber's inbox.

The server can be made to mail a stranger, so requests are bounded: SUBSCRIBE_RULES per client IP (in
memory), ADDRESS_MAILS_PER_DAY per mailbox (counted in the store), one pending confirmation per mailbox
and subscription; a repeat is answered exactly like the first request. Every text field is refused with
422 when it holds a control character or line break, before anything is stored or mailed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from pydantic import AfterValidator, BaseModel, Field
from starlette.responses import Response

from papersift import digest
from papersift.errors import PaperNotFound, PapersiftError, QueryError, RateLimited
from papersift.letters import Letters
from papersift.mail import Mailer, SmtpConfig
from papersift.store.subscriptions import (
    FREQUENCIES,
    KINDS,
    Frequency,
    Kind,
    Subscription,
    Subscriptions,
    Topic,
    check_text,
)
from papersift.web import auth, for_reader
from papersift.web.api import SiteDep, error_responses
from papersift.web.pages import render
from papersift.web.ratelimit import client_ip, limiter_for
from papersift.web.site import Site

router = APIRouter(include_in_schema=False)
Token = Annotated[str, Query(min_length=1, max_length=500)]
FormText = Annotated[str, Form(max_length=500)]
# the form's fields are bounded here rather than by FastAPI, so that a value over its bound re-shows the
# form with what was typed and a message (a validation error would render a bare error page)
LooseText = Annotated[str, Form(max_length=5000)]
FIELD_LIMITS = {"email": 254, "kind": 16, "q": 500, "category": 64, "author": 128, "like": 500, "frequency": 16}
# what each kind of subscription asks for, besides the address and how often: one form per kind
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "search": ("q", "category"),
    "category": ("category",),
    "author": ("author",),
    "similar": ("like",),
    "trending": (),
}
# subscription requests one client IP may make: a burst, and a day
SUBSCRIBE_RULES = ("5/minute", "20/day")


def _plain(value: str) -> str:
    """A pydantic validator: no control characters or line breaks (they could end up in a mail header)."""
    try:
        check_text("field", value)
    except QueryError as exc:
        raise ValueError(str(exc)) from None
    return value


PlainText = Annotated[str, AfterValidator(_plain)]


def _throttle(request: Request) -> None:
    """Per-IP limits on subscription requests (each one may mail somebody)."""
    limiter = limiter_for(request)
    for rule in SUBSCRIBE_RULES:
        limiter.hit(f"subscribe:{client_ip(request)}", rule, "too many subscription requests from your address")


def letters_for(site: Site) -> Letters:
    return Letters.for_settings(site.settings, auth.site_secret(site.settings))


def _form(**values: object) -> dict[str, object]:
    defaults: dict[str, object] = {"email": "", "kind": "search", "q": "", "category": "", "author": ""}
    defaults.update({"like": "", "frequency": "daily", "max_papers": 10})
    return {**defaults, **{k: v for k, v in values.items() if v not in (None, "")}}


@router.get("/subscribe")
def subscribe_form(
    request: Request,
    site: SiteDep,
    kind: Annotated[str, Query(max_length=16)] = "search",
    q: Annotated[str, Query(max_length=500)] = "",
    category: Annotated[str, Query(max_length=64)] = "",
    author: Annotated[str, Query(max_length=128)] = "",
    like: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    """The subscribe form, pre-filled from a search or a paper page (`?kind=search&q=...`)."""
    form = _form(kind=kind if kind in KINDS else "search", q=q, category=category, author=author, like=like)
    return render(request, site, "subscribe.html", mode="form", **_form_context(form))


def _form_context(form: dict[str, object]) -> dict[str, Any]:
    return {"form": form, "kinds": KINDS, "frequencies": FREQUENCIES, "fields": KIND_FIELDS.get(str(form["kind"]), ())}


def _max_papers(value: str) -> int:
    """The form's "at most N papers", read here so a bad value re-shows the form (see LooseText)."""
    try:
        number = int(value.strip() or "10")
    except ValueError:
        number = 0
    if not 1 <= number <= digest.MAX_PAPERS:
        raise QueryError(f"a digest holds 1 to {digest.MAX_PAPERS} papers")
    return number


@router.post("/subscribe")
def subscribe(
    request: Request,
    site: SiteDep,
    email: LooseText = "",
    kind: LooseText = "search",
    q: LooseText = "",
    category: LooseText = "",
    author: LooseText = "",
    like: LooseText = "",
    frequency: LooseText = "daily",
    max_papers: LooseText = "10",
    csrf_token: FormText = "",
) -> Response:
    auth.check_csrf(request, csrf_token)
    _throttle(request)
    form = _form(email=email, kind=kind, q=q, category=category, author=author, like=like, frequency=frequency)
    form["max_papers"] = max_papers
    if form["kind"] not in KINDS:
        form["kind"] = "search"
    try:
        for label, value in form.items():
            if isinstance(value, str):
                check_text(label, value)
                if len(value) > FIELD_LIMITS.get(label, 500):
                    raise QueryError(f"the {label} field holds at most {FIELD_LIMITS.get(label, 500)} characters")
        count = _max_papers(max_papers)
        topic = _topic(kind, q, category, author, like)
        mailer = Mailer(SmtpConfig.from_settings(site.settings), attempts=2, backoff=1.0)
        freq: Frequency = "weekly" if frequency == "weekly" else "daily"
        digest.subscribe(site.store, letters_for(site), mailer, email, topic, freq, count)
    except RateLimited:
        raise  # 429 with Retry-After, not a form error
    except PapersiftError as exc:
        form = {k: ("" if isinstance(v, str) and not _is_plain(v) else v) for k, v in form.items()}
        context = {"mode": "form", **_form_context(form)}
        context["message"] = for_reader(422 if isinstance(exc, QueryError) else 502, str(exc))  # no SMTP address, errno
        return render(request, site, "subscribe.html", status_code=422, **context)
    return render(request, site, "subscribe.html", mode="sent", email=email.strip())


def _is_plain(value: str) -> bool:
    try:
        check_text("field", value)
    except QueryError:
        return False
    return True


def _topic(kind: str, q: str, category: str, author: str, like: str) -> Topic:
    if kind not in KINDS:
        raise QueryError(f"choose one of {', '.join(KINDS)}")
    k: Kind = kind
    if k == "category":
        return Topic(k, category.strip() or q.strip())
    if k == "author":
        return Topic(k, author.strip() or q.strip())
    if k == "similar":
        return Topic(k, seeds=tuple(s for s in like.replace(",", " ").split() if s))
    if k == "search":
        return Topic(k, q.strip(), (category.strip(),) if category.strip() else (), author=author.strip())
    return Topic(k)


@router.get("/subscriptions/confirm")
def confirm_page(request: Request, site: SiteDep, token: Token) -> Response:
    """The mailed double opt-in link shows a button and changes nothing: mail scanners prefetch links."""
    letters = letters_for(site)
    sub = Subscriptions(site.store).get(letters.read_confirm(token))
    if sub is None or not sub.active:
        return render(request, site, "subscribe.html", status_code=404, mode="gone")
    if sub.confirmed:
        unsubscribe_url = letters.unsubscribe_url(sub.id)
        return render(request, site, "subscribe.html", mode="confirmed", sub=sub, unsubscribe_url=unsubscribe_url)
    return render(request, site, "subscribe.html", mode="confirm", sub=sub, token=token)


@router.post("/subscriptions/confirm")
def confirm(request: Request, site: SiteDep, token: Annotated[str, Form(min_length=1, max_length=500)]) -> Response:
    """The page's button: the signed, expiring token is the authority (idempotent)."""
    letters = letters_for(site)
    sub_id = letters.read_confirm(token)
    subs = Subscriptions(site.store)
    sub = subs.get(sub_id) if subs.confirm(sub_id) else None
    if sub is None or not sub.active:
        return render(request, site, "subscribe.html", status_code=404, mode="gone")
    unsubscribe_url = letters.unsubscribe_url(sub.id)
    return render(request, site, "subscribe.html", mode="confirmed", sub=sub, unsubscribe_url=unsubscribe_url)


@router.get("/subscriptions/unsubscribe")
def unsubscribe_page(request: Request, site: SiteDep, token: Token) -> Response:
    """Shows a button, never unsubscribes: link scanners and previews fetch GET links."""
    sub = Subscriptions(site.store).get(letters_for(site).read_manage(token))
    if sub is None:
        return render(request, site, "subscribe.html", status_code=404, mode="gone")
    return render(request, site, "subscribe.html", mode="unsubscribe", sub=sub, token=token)


@router.post("/subscriptions/unsubscribe")
def unsubscribe(request: Request, site: SiteDep, token: Token) -> Response:
    """One-click unsubscribe (RFC 8058) and the page's button; the signed token is the authority."""
    sub_id = letters_for(site).read_manage(token)
    subs = Subscriptions(site.store)
    if not subs.unsubscribe(sub_id):
        return render(request, site, "subscribe.html", status_code=404, mode="gone")
    return render(request, site, "subscribe.html", mode="unsubscribed", sub=subs.get(sub_id))


# -- JSON API: the same capabilities, for scripts and other front ends --------------------------------

SUBSCRIPTION_ERRORS = error_responses(
    (400, "A damaged or foreign link token, or a malformed body"),
    (403, "Bad CSRF token"),
    (404, "No such active subscription"),
    (422, "Bad parameter"),
    (429, "Too many requests; the Retry-After header says when to try again"),
    (502, "The confirmation mail could not be handed to the SMTP server; try again later"),
)
api_router = APIRouter(prefix="/api/subscriptions", tags=["subscriptions"], responses=SUBSCRIPTION_ERRORS)


class SubscribeIn(BaseModel):
    email: PlainText = Field(max_length=254)
    kind: PlainText = Field(default="search", max_length=16)
    q: PlainText = Field(default="", max_length=500)
    category: PlainText = Field(default="", max_length=64)
    author: PlainText = Field(default="", max_length=128)
    like: PlainText = Field(default="", max_length=500)
    frequency: Frequency = "daily"
    max_papers: int = Field(default=10, ge=1, le=digest.MAX_PAPERS)


class SubscriptionOut(BaseModel):
    id: int
    email: str
    topic: str
    frequency: str
    max_papers: int
    confirmed: bool
    active: bool


def _out(sub: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=sub.id,
        email=sub.email,
        topic=sub.topic.describe(),
        frequency=sub.frequency,
        max_papers=sub.max_papers,
        confirmed=sub.confirmed,
        active=sub.active,
    )


@api_router.post("", status_code=202, summary="Subscribe; a confirmation link is mailed (double opt-in)")
def api_subscribe(request: Request, site: SiteDep, body: SubscribeIn) -> dict[str, str]:
    """The same answer whether a mail went out or an identical request is still pending: it reveals nothing."""
    auth.check_csrf(request, None)  # the X-CSRF-Token header, as for every API write
    _throttle(request)
    topic = _topic(body.kind, body.q, body.category, body.author, body.like)
    mailer = Mailer(SmtpConfig.from_settings(site.settings), attempts=2, backoff=1.0)
    digest.subscribe(site.store, letters_for(site), mailer, body.email, topic, body.frequency, body.max_papers)
    return {"status": "confirmation_sent", "email": body.email.strip()}


@api_router.post("/confirm", response_model=SubscriptionOut, summary="Confirm with the mailed token")
def api_confirm(site: SiteDep, token: Token) -> SubscriptionOut:
    sub_id = letters_for(site).read_confirm(token)
    subs = Subscriptions(site.store)
    sub = subs.get(sub_id) if subs.confirm(sub_id) else None
    if sub is None or not sub.active:
        raise SubscriptionGone()
    return _out(sub)


@api_router.get("/{token}", response_model=SubscriptionOut, summary="Read a subscription by its manage token")
def api_read(site: SiteDep, token: str) -> SubscriptionOut:
    sub = Subscriptions(site.store).get(letters_for(site).read_manage(token))
    if sub is None:
        raise SubscriptionGone()
    return _out(sub)


@api_router.delete("/{token}", response_model=SubscriptionOut, summary="Unsubscribe by the manage token")
def api_unsubscribe(site: SiteDep, token: str) -> SubscriptionOut:
    sub_id = letters_for(site).read_manage(token)
    subs = Subscriptions(site.store)
    if not subs.unsubscribe(sub_id):
        raise SubscriptionGone()
    sub = subs.get(sub_id)
    assert sub is not None
    return _out(sub)


class SubscriptionGone(PaperNotFound):
    """No such active subscription: a 404 like any unknown id."""

    def __init__(self) -> None:
        PapersiftError.__init__(self, "no such subscription (it was removed, or the link is not ours)")
