"""Outgoing email over SMTP (smtplib): STARTTLS or implicit TLS, credentials, retries with back-off.

Transient failures (connection trouble, 4xx replies) are retried with exponential back-off; a
permanent refusal (5xx, e.g. "550 no such user") is raised at once as MailRejected, since retrying
cannot change the server's mind and would only delay the other recipients.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from papersift.errors import PapersiftError
from papersift.settings import Settings


class MailError(PapersiftError):
    """A message could not be delivered to the SMTP server."""


class MailRejected(MailError):
    """The server refused the message or its recipient for good (a 5xx reply)."""


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
    """A multipart/alternative message: plain text first, HTML preferred by clients that can show it."""
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
