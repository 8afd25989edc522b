"""The small HTTP layer the network sources share: polite, bounded, retried, with messages a user can act on.

arXiv asks clients for one request every 3 seconds and answers overload with 503 + Retry-After, so
both are handled here once rather than in every source. Bodies are streamed against a size cap so a
misbehaving server cannot exhaust memory.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, TypeVar
from urllib.parse import urlsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from papersift.errors import SourceError

USER_AGENT = "papersift/0.1 (+self-hosted)"
RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})
# Connection-level failures worth another try; anything else (bad URL, unsupported scheme) is not.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)
DEFAULT_MAX_BYTES = 200 << 20
DEFAULT_DOWNLOAD_MAX_BYTES = 16 << 30  # the full arXiv snapshot is ~4.5 GB
DEFAULT_TIMEOUT = 60.0
HINT = "check the network or ingest a downloaded file"
T = TypeVar("T")


class Politeness:
    """Keeps at least `interval` seconds between requests to the same host (arXiv's published rate limit)."""

    def __init__(
        self,
        interval: float = 3.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = max(0.0, interval)
        self._clock = clock
        self._sleep = sleep
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, url: str) -> None:
        """Sleep until the host of `url` may be asked again, then record this request."""
        host = urlsplit(url).netloc.lower()
        with self._lock:
            last = self._last.get(host)
            if last is not None and self.interval > 0:
                remaining = last + self.interval - self._clock()
                if remaining > 0:
                    self._sleep(remaining)
            self._last[host] = self._clock()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: `attempts` in all, exponential backoff from `backoff` seconds, no wait over `max_wait`,
    each attempt given up after `timeout` seconds."""

    attempts: int = 5
    backoff: float = 2.0
    max_wait: float = 300.0
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> RetryPolicy:
        """Read `retries` (attempts), `retry_wait` (backoff seconds) and `timeout` from source options."""
        default = cls()
        try:
            return cls(
                attempts=max(1, int(options.get("retries", default.attempts))),
                backoff=max(0.0, float(options.get("retry_wait", default.backoff))),
                max_wait=max(0.0, float(options.get("retry_max_wait", default.max_wait))),
                timeout=max(0.1, float(options.get("timeout", default.timeout))),
            )
        except ValueError as exc:
            raise SourceError(f"bad retry option ({exc}); retries is a whole number, retry_wait seconds") from None


class _RetryableStatus(Exception):
    def __init__(self, status: int, reason: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not '²', which isdigit() accepts and float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    except (TypeError, ValueError, IndexError, OverflowError):  # year 99999999999: OverflowError
        return None


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus) and exc.retry_after is not None:
            return min(exc.retry_after, policy.max_wait)  # the server said when; believe it
        return min(policy.backoff * 2.0 ** (state.attempt_number - 1), policy.max_wait)

    return wait


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (_RetryableStatus, *RETRYABLE_ERRORS))


def _head(response: httpx.Response, limit: int) -> bytes:
    """The first `limit` bytes of an error body, for the message; never the whole (possibly huge) body."""
    head = b""
    for chunk in response.iter_bytes():
        head += chunk
        if len(head) >= limit:
            break
    return head[:limit]


def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise SourceError(f"{url}: response is {int(declared) / 1e6:g} MB, over the {max_bytes / 1e6:g} MB limit")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise SourceError(
                f"{url}: response is over the {max_bytes / 1e6:g} MB limit; "
                "ask for a smaller page or ingest a downloaded file"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def get(
    url: str,
    params: Mapping[str, str] | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    politeness: Politeness | None = None,
    retry: RetryPolicy | None = None,
    timeout: httpx.Timeout | float | None = None,
    allow_statuses: Collection[int] = (),
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """GET `url` and return the body, retrying overload and connection failures; SourceError on anything else.

    `allow_statuses` lists non-2xx statuses whose body the caller wants anyway (e.g. an API's error document).
    """
    return _request(
        url,
        params,
        lambda response, full_url: _read_capped(response, full_url, max_bytes),
        politeness=politeness,
        retry=retry,
        timeout=timeout,
        allow_statuses=allow_statuses,
        sleep=sleep,
    )


def download(
    url: str,
    sink: IO[bytes],
    *,
    max_bytes: int = DEFAULT_DOWNLOAD_MAX_BYTES,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Stream `url` into `sink` (a seekable file) and return its size: for files too big to hold in memory,
    such as a metadata snapshot. A retried attempt starts the file over."""

    def consume(response: httpx.Response, full_url: str) -> int:
        sink.seek(0)
        sink.truncate()
        size = 0
        for chunk in response.iter_bytes(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise SourceError(f"{full_url}: download is over the {max_bytes / 1e9:g} GB limit")
            sink.write(chunk)
        sink.flush()
        return size

    return _request(url, None, consume, retry=retry, sleep=sleep)


def _request(
    url: str,
    params: Mapping[str, str] | None,
    consume: Callable[[httpx.Response, str], T],
    *,
    politeness: Politeness | None = None,
    retry: RetryPolicy | None = None,
    timeout: httpx.Timeout | float | None = None,
    allow_statuses: Collection[int] = (),
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    policy = retry or RetryPolicy()
    try:
        full_url = str(httpx.URL(url).copy_merge_params(dict(params))) if params else str(httpx.URL(url))
    except httpx.InvalidURL as exc:
        raise SourceError(f"{url!r} is not a valid URL ({exc})") from None
    headers = {"User-Agent": USER_AGENT}

    def attempt(client: httpx.Client) -> T:
        if politeness is not None:
            politeness.wait(full_url)
        with client.stream("GET", full_url) as response:
            status = response.status_code
            if status in RETRYABLE_STATUSES:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                raise _RetryableStatus(status, response.reason_phrase, retry_after)
            if status >= 400 and status not in allow_statuses:
                snippet = " ".join(_head(response, 300).decode("utf-8", "replace").split())
                raise SourceError(f"{full_url}: the server answered HTTP {status} {response.reason_phrase}: {snippet}")
            return consume(response, full_url)

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_wait(policy),
        retry=retry_if_exception(_is_retryable),
        reraise=True,
        sleep=sleep,
    )
    try:
        limit = policy.timeout if timeout is None else timeout
        with httpx.Client(headers=headers, timeout=limit, follow_redirects=True) as client:
            return retrying(attempt, client)
    except _RetryableStatus as exc:
        raise SourceError(
            f"{full_url}: the server answered {exc} on all {policy.attempts} attempts; "
            "it is overloaded or down, try again later or ingest a downloaded file"
        ) from exc
    except httpx.HTTPError as exc:
        detail = str(exc) or type(exc).__name__
        raise SourceError(f"could not reach {full_url}: {detail}; {HINT}") from exc
