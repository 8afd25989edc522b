"""Outgoing email over SMTP (smtplib): STARTTLS or implicit TLS, credentials, retries with back-off.

Transient failures (connection trouble, 4xx replies) are retried with exponential back-off; a
permanent refusal (5xx, e.g. "550 no such user") is raised at once as MailRejected, since retrying
cannot change the server's mind and would only delay the other recipients.

Header values are checked here whatever the caller: a control character or line break in one (a header
injection: "x\r\nBcc: victim") raises UnsafeHeader, and To must be exactly one plain address.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import unicodedata
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr

from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from papersift.errors import PapersiftError
from papersift.settings import Settings


class MailError(PapersiftError):
    """A message could not be delivered to the SMTP server."""


class MailRejected(MailError):
    """The server refused the message or its recipient for good (a 5xx reply)."""


class UnsafeHeader(MailError):
    """A header value would carry a line break or control character, or To is not one plain address."""


# one plain ASCII address: RFC 5322 dot-atom local part, LDH domain labels (IDNs in their xn-- form)
ADDRESS_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z"
)


def check_header(name: str, value: str) -> None:
    """Refuse a header value holding CR, LF or any other control character or line separator."""
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            raise UnsafeHeader(f"refusing to send: the {name} header would contain U+{ord(ch):04X}")


def check_recipient(to: str) -> None:
    """To must be exactly one plain address (no display name, no list) matching ADDRESS_RE."""
    check_header("To", to)
    found = getaddresses([to])
    if len(found) != 1 or found[0][1] != to or not ADDRESS_RE.match(to) or len(to) > 254:
        raise UnsafeHeader(f"refusing to send: {to!r} is not one plain email address")


@dataclass(slots=True, frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # starttls | ssl | none
    username: str
    password: str
    sender: str
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_security,
            settings.smtp_username,
            settings.smtp_password,
            settings.smtp_from,
            settings.http_timeout,
        )


def build_message(
    sender: str, to: str, subject: str, text: str, html: str, headers: dict[str, str] | None = None
) -> EmailMessage:
    """A multipart/alternative message: plain text first, HTML preferred by clients that can show it.
    Raises UnsafeHeader rather than build a header that could carry another header."""
    check_recipient(to)
    values = {"From": sender, "Subject": subject, **(headers or {})}
    for name, value in values.items():
        check_header(name, value)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


def _smtp_code(exc: BaseException) -> int | None:
    if isinstance(exc, smtplib.SMTPResponseException):
        return int(exc.smtp_code)
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        return int(min(code for code, _ in exc.recipients.values()))
    return None


def is_transient(exc: BaseException) -> bool:
    """Worth another try: dropped connections, timeouts and 4xx 'try again later' replies."""
    if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return True
    code = _smtp_code(exc)
    if code is not None:
        return 400 <= code < 500
    return isinstance(exc, OSError)


class Mailer:
    """Sends one message per connection: a digest run is small, and a fresh connection per message
    keeps one broken session from failing every recipient after it."""

    def __init__(self, config: SmtpConfig, attempts: int = 4, backoff: float = 2.0) -> None:
        if not config.host:
            raise MailError("no SMTP server configured: set PAPERSIFT_SMTP_HOST (and PAPERSIFT_SMTP_FROM)")
        if not config.sender:
            raise MailError("no sender address: set PAPERSIFT_SMTP_FROM")
        self.config = config
        self.attempts = attempts
        self.backoff = backoff

    def send(self, msg: EmailMessage) -> None:
        """Deliver with retries; raises MailRejected (permanent) or MailError (gave up)."""
        sender = retry(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, max=60),
            reraise=True,
        )(self._send_once)
        try:
            sender(msg)
        except (smtplib.SMTPException, OSError) as exc:
            code = _smtp_code(exc)
            detail = f"{type(exc).__name__}: {exc}"
            if code is not None and code >= 500:
                raise MailRejected(f"{msg['To']}: refused by the SMTP server ({detail})") from exc
            raise MailError(f"{msg['To']}: cannot send ({detail})") from exc

    def _send_once(self, msg: EmailMessage) -> None:
        c = self.config
        smtp: smtplib.SMTP
        if c.security == "ssl":
            smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
        with smtp:
            if c.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if c.username:
                smtp.login(c.username, c.password)
            smtp.send_message(msg, from_addr=parseaddr(c.sender)[1])
