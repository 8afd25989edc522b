"""Accounts and abuse (issue 10, items 8-10): sessions end at sign-out, sign-in and sign-up are throttled
before any password hashing, user names are unique case-insensitively and after Unicode normalisation."""

from __future__ import annotations

import pytest

from papersift.errors import RateLimited
from papersift.web.ratelimit import Limiter


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
