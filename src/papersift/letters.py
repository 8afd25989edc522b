"""What digest and confirmation emails say and link to: Jinja templates and signed links.

Links carry an itsdangerous signature made with the site secret, so an address is managed by the
links mailed to it alone, with no account: a confirmation link expires after CONFIRM_DAYS; an
unsubscribe link never does (it sits in old emails and must keep working, as RFC 8058 expects).

A confirmation goes to an address that has not agreed to anything yet, so its subject is fixed text:
nothing the requester typed can be put in a stranger's subject line. Paper links are http(s) only.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlencode

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape

from papersift.errors import PapersiftError
from papersift.models import Paper
from papersift.settings import Settings
from papersift.store.subscriptions import Subscription
from papersift.urls import safe_url

TEMPLATES = Path(__file__).resolve().parent / "emails"
CONFIRM_DAYS = 7
ABSTRACT_CHARS = 300
TOPIC_CHARS = 120  # the subscriber's words in a subject or a confirmation body
CONFIRM_SUBJECT = "Confirm your papersift digest subscription"


class BadLink(PapersiftError):
    """A subscription link that was altered, belongs to another site, or expired."""


def public_url(settings: Settings) -> str:
    """Where the site is reachable from a mail client: PAPERSIFT_BASE_URL, else host and port."""
    return settings.base_url.rstrip("/") or f"http://{settings.host}:{settings.port}"


def short(text: str, limit: int = ABSTRACT_CHARS) -> str:
    """An abstract cut at a word boundary, for a scannable email."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


class Letters:
    """Renders emails and signs/verifies subscription links for one site."""

    def __init__(self, base_url: str, secret: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._confirm = URLSafeTimedSerializer(secret, salt="papersift.subscription.confirm")
        self._manage = URLSafeSerializer(secret, salt="papersift.subscription.manage")
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["short"] = short

    @classmethod
    def for_settings(cls, settings: Settings, secret: str) -> Letters:
        return cls(public_url(settings), secret)

    # -- links -------------------------------------------------------------------------------------

    def _url(self, path: str, **params: str) -> str:
        return f"{self.base_url}{path}?{urlencode(params)}"

    def confirm_url(self, sub_id: int) -> str:
        return self._url("/subscriptions/confirm", token=self._confirm.dumps(sub_id))

    def unsubscribe_url(self, sub_id: int) -> str:
        return self._url("/subscriptions/unsubscribe", token=self._manage.dumps(sub_id))

    def paper_url(self, paper: Paper) -> str:
        return f"{self.base_url}/papers/{quote(paper.id, safe='/:')}"

    def read_confirm(self, token: str) -> int:
        """The subscription id a confirmation link is for; BadLink when tampered with or expired."""
        try:
            return int(self._confirm.loads(token, max_age=CONFIRM_DAYS * 86400))
        except SignatureExpired:
            raise BadLink(f"this confirmation link is more than {CONFIRM_DAYS} days old; subscribe again") from None
        except (BadSignature, ValueError, TypeError):
            raise BadLink("this link is damaged or not from this site") from None

    def read_manage(self, token: str) -> int:
        """The subscription id an unsubscribe link is for; BadLink when tampered with."""
        try:
            return int(self._manage.loads(token))
        except (BadSignature, ValueError, TypeError):
            raise BadLink("this link is damaged or not from this site") from None

    # -- emails ------------------------------------------------------------------------------------

    def _render(self, name: str, **context: object) -> tuple[str, str]:
        text = self.env.get_template(f"{name}.txt").render(**context)
        html = self.env.get_template(f"{name}.html").render(**context)
        return text, html

    def digest(self, sub: Subscription, period_key: str, papers: list[Paper]) -> tuple[str, str, str]:
        """(subject, plain text, HTML) of one digest."""
        topic = short(sub.topic.describe(), TOPIC_CHARS)
        subject = f"papersift {sub.frequency} digest: {topic} ({period_key}, {len(papers)} papers)"
        items = [
            {"paper": p, "url": self.paper_url(p), "abs_url": safe_url(p.abs_url), "pdf_url": safe_url(p.pdf_url)}
            for p in papers
        ]
        text, html = self._render(
            "digest",
            subject=subject,
            sub=sub,
            items=items,
            period=period_key,
            unsubscribe_url=self.unsubscribe_url(sub.id),
            site_url=self.base_url + "/",
        )
        return subject, text, html

    def confirmation(self, sub: Subscription) -> tuple[str, str, str]:
        """(subject, plain text, HTML) of the double opt-in email."""
        subject = CONFIRM_SUBJECT
        text, html = self._render(
            "confirm",
            subject=subject,
            sub=sub,
            topic=short(sub.topic.describe(), TOPIC_CHARS),
            confirm_url=self.confirm_url(sub.id),
            days=CONFIRM_DAYS,
            site_url=self.base_url + "/",
        )
        return subject, text, html
