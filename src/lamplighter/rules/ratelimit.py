"""A token bucket per key: `burst` events at once, then one every `every` seconds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """Tokens refill continuously; taking one needs a whole token."""

    every: float
    burst: int
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, every: float, burst: int, now: float) -> TokenBucket:
        return cls(every=every, burst=burst, tokens=float(burst), updated_at=now)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated_at)
        self.tokens = min(float(self.burst), self.tokens + elapsed / self.every)
        self.updated_at = now

    def tokens_at(self, now: float) -> float:
        self._refill(now)
        return self.tokens

    def has_token(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= 1.0

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1.0

    def retry_after(self, now: float) -> float:
        """Seconds until one whole token is back (0 when one is there now)."""
        self._refill(now)
        return max(0.0, (1.0 - self.tokens) * self.every)
