"""Links that leave the site: only http(s) URLs are stored or rendered.

Why by hand: the check is one scheme comparison, but it must see the URL as a browser, a feed reader
or a mail client would: they drop leading control characters and spaces and ignore case, so
" JaVaScRiPt:alert(1)" and "java\\tscript:" are still scripts. Everything that is not plainly
http or https with a host becomes "" (no link), never an escaped-but-live href.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL_CHARS = 2048
_INVISIBLE = "".join(chr(c) for c in range(0x21)) + "\x7f"


def safe_url(value: object) -> str:
    """The URL if it is an absolute http(s) URL with a host, else ""."""
    if not isinstance(value, str):
        return ""
    url = value.strip(_INVISIBLE)
    if not url or len(url) > MAX_URL_CHARS or any(ch in url for ch in _INVISIBLE):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    return url
