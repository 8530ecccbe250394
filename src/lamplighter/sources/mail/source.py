"""What the IMAP and SMTP sources share: rules, spoof checks, and handing a mail's event over.

A mail goes: parse -> first matching rule -> spoof checks for that rule -> one of
    - an event at the rule's level (believed),
    - an event at the rule's `unauthenticated_level` (not believed, and the rule allows that),
    - a rejection with the reason (not believed): never submitted, so it never lights a lamp,
    - nothing (no rule matched).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field, model_validator

from lamplighter.model import Clock, Event, Receipt, Status, make_event
from lamplighter.sources.base import Source, SourceSettings, Submit
from lamplighter.sources.mail.authentication import Evidence, check
from lamplighter.sources.mail.message import Mail
from lamplighter.sources.mail.rules import Requirement, RuleMatch, RuleSettings, Senders, find_rule, parse_requirement

log = logging.getLogger(__name__)

MAX_TITLE = 500
MAX_KEY = 500

class MailSettings(SourceSettings):
    """Keys both mail sources accept."""

    rules: list[RuleSettings] = Field(min_length=1)
    senders: Senders = ()  # allow-list for every rule that does not set its own; empty: anyone
    require: Requirement = frozenset()  # proofs for every rule that does not set its own; see each type

    SUPPORTED: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _requirements_supported(self) -> MailSettings:
        for place, wanted in [("require", self.require), *((f"rules.{i}.require", r.require or frozenset())
                                                             for i, r in enumerate(self.rules))]:
            unsupported = sorted(wanted - set(self.SUPPORTED))
            if unsupported:
                raise ValueError(f"{place}: {unsupported[0]!r} is not available for {self.type}"
                                 f" (use {'|'.join(self.SUPPORTED)})")
        if not any(r.status is Status.FIRING for r in self.rules) and any(not r.level for r in self.rules):
            raise ValueError("rules: a resolved rule needs a level when there is no firing rule to take it from")
        return self

    def requirement(self, rule: RuleSettings) -> frozenset[str]:
        return rule.require if rule.require is not None else self.require

    def allowed_senders(self, rule: RuleSettings) -> tuple[str, ...]:
        return rule.senders if rule.senders is not None else self.senders


def default_requirement(*words: str) -> frozenset[str]:
    return parse_requirement(list(words))


@dataclass(frozen=True)
class Decision:
    """What to do with one mail."""

    event: Event | None = None  # None: no rule matched
    rejection: str | None = None  # why the mail is not believed
    submit: bool = False  # believed, or the rule lets it in at its unauthenticated_level


class MailSource(Source):
    """Rules and spoof checks; the subclasses fetch or receive the mail."""

    Settings: ClassVar[type[SourceSettings]] = MailSettings

    def __init__(self, name: str, settings: SourceSettings, clock: Clock) -> None:
        super().__init__(name, settings, clock)
        assert isinstance(settings, MailSettings)
        self.mail_settings = settings

    def find_rule(self, mail: Mail) -> RuleMatch | None:
        return find_rule(self.mail_settings.rules, mail)

    def decide(self, mail: Mail, found: RuleMatch | None, evidence: Evidence, labels: dict[str, str]) -> Decision:
        """The event (if any) for a mail whose rule and evidence are known. Pure."""
        if found is None:
            return Decision()
        rule = found.rule
        reason = check(mail, evidence, self.mail_settings.allowed_senders(rule), self.mail_settings.requirement(rule))
        if reason is None:
            return Decision(self._event(mail, found, found.level, labels), submit=True)
        if rule.unauthenticated_level is not None:
            labels = {**labels, "authentication": f"failed: {reason}"}
            return Decision(self._event(mail, found, rule.unauthenticated_level, labels), reason, submit=True)
        return Decision(self._event(mail, found, found.level, labels), reason)

    def _event(self, mail: Mail, found: RuleMatch, level: str, labels: dict[str, str]) -> Event:
        title = found.title[:MAX_TITLE] or mail.subject[:MAX_TITLE] or f"mail from {mail.from_address or 'unknown'}"
        return make_event(level, title, received_at=self.clock.now(), body=mail.body, sender=mail.from_address,
                          source=self.name, key=found.key[:MAX_KEY], status=found.rule.status.value,
                          labels={"message_id": mail.message_id, "from": mail.from_address, **labels})

    def deliver(self, decision: Decision, submit: Submit) -> Receipt | None:
        """On the event loop: submit a believed (or allowed-down) event, record or log a rejection."""
        event = decision.event
        if event is None:
            return None
        if decision.rejection is not None:
            log.warning("source %s: mail %s from %s: %s", self.name, event.labels.get("message_id", "?"),
                        event.sender or "?", decision.rejection)
        if decision.submit:
            return submit(event)
        if self.facade is None:  # not run by a service (a test of the parser alone)
            return None
        return self.facade.record_rejected(event, decision.rejection or "rejected")
