"""Is an HTTP request really from Slack? Its signature, its age, and whether we saw it before.

Slack signs `v0:{X-Slack-Request-Timestamp}:{raw body}` with the app's signing secret
(HMAC-SHA256, hex, `v0=` prefix, in `X-Slack-Signature`). slack_sdk's SignatureVerifier
computes and compares it in constant time. A request older or newer than five minutes is
refused, and so is a second request with a signature already accepted (a replay inside the
window, remembered across restarts in the source's state directory), so each check fails
with its own message.
"""

from __future__ import annotations

from collections.abc import Mapping

from slack_sdk.signature import Clock as SlackClock
from slack_sdk.signature import SignatureVerifier

from lamplighter.errors import AuthError
from lamplighter.model import Clock, format_duration
from lamplighter.sources.replay import ReplayMemory

WINDOW = 300.0  # seconds a timestamp may be off, either way
SIGNATURE = "x-slack-signature"
TIMESTAMP = "x-slack-request-timestamp"


class _ClockForSlack(SlackClock):
    """Our injected clock, in the shape slack_sdk asks for."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now()


class RequestVerifier:
    """Checks Slack's request signature; raises AuthError naming the check that failed."""

    def __init__(self, signing_secret: str, clock: Clock, replays: ReplayMemory | None = None) -> None:
        self._clock = clock
        self._verifier = SignatureVerifier(signing_secret, clock=_ClockForSlack(clock))
        self._replays = replays or ReplayMemory(clock)

    def check(self, headers: Mapping[str, str], body: bytes) -> None:
        lowered = {name.lower(): value for name, value in headers.items()}
        signature, timestamp = lowered.get(SIGNATURE), lowered.get(TIMESTAMP)
        if not signature or not timestamp:
            raise AuthError("missing X-Slack-Signature or X-Slack-Request-Timestamp: not a request from Slack")
        sent_at = _epoch(timestamp)
        self._check_age(sent_at)
        if not self._signed(body, timestamp, signature):
            raise AuthError("bad signature: X-Slack-Signature does not match the body signed with the signing secret")
        self._check_fresh(signature, sent_at)

    def _signed(self, body: bytes, timestamp: str, signature: str) -> bool:
        try:
            return self._verifier.is_valid(body, timestamp, signature)
        except UnicodeDecodeError:  # slack_sdk signs the body as text; Slack only sends UTF-8
            return False

    def _check_age(self, sent_at: int) -> None:
        off = self._clock.now() - sent_at
        if abs(off) > WINDOW:
            direction = "old" if off > 0 else "in the future"
            raise AuthError(f"stale timestamp: X-Slack-Request-Timestamp is {format_duration(abs(off))} {direction} "
                            f"(at most {format_duration(WINDOW)} either way); a replay, or this machine's clock is off")

    def _check_fresh(self, signature: str, sent_at: int) -> None:
        if self._replays.seen(signature):
            raise AuthError("replayed request: this X-Slack-Signature was already accepted")
        self._replays.remember(signature, sent_at + WINDOW)


def _epoch(timestamp: str) -> int:
    try:
        return int(timestamp)
    except ValueError:
        raise AuthError("X-Slack-Request-Timestamp is not a number of seconds") from None
