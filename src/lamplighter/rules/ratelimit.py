"""A token bucket per key: `burst` events at once, then one every `every` seconds.

A bucket is a value: asking it about a moment never changes it, and `take` returns a new
bucket. Its clock only moves forward: a question about a moment before its last update (an
event received before the previous one was routed, a memory prune at an older time) is
answered at the last update, so a refill is never counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from lamplighter.model import format_duration


def describe_rate(burst: int, every: float) -> str:
    """A bucket in the configuration's own terms: `2 at once, then one every 30s`."""
    then = f"one every {format_duration(every)}"
    return then if burst == 1 else f"{burst} at once, then {then}"


@dataclass(frozen=True)
class TokenBucket:
    """Tokens refill continuously; taking one needs a whole token."""

    every: float
    burst: int
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, every: float, burst: int, now: float) -> TokenBucket:
        return cls(every=every, burst=burst, tokens=float(burst), updated_at=now)

    def tokens_at(self, now: float) -> float:
        elapsed = max(0.0, now - self.updated_at)
        return min(float(self.burst), self.tokens + elapsed / self.every)

    def has_token(self, now: float) -> bool:
        return self.tokens_at(now) >= 1.0

    def take(self, now: float) -> TokenBucket:
        """The bucket after one token is taken at `now` (or at its last update, if that is later)."""
        return TokenBucket(self.every, self.burst, self.tokens_at(now) - 1.0, max(now, self.updated_at))

    def retry_after(self, now: float) -> float:
        """Seconds until one whole token is back (0 when one is there now)."""
        return max(0.0, (1.0 - self.tokens_at(now)) * self.every)
