"""Buildbot's HttpStatusPush reporter: a broken build lights the lamp, the next good one ends it.

    sources:
      - type: buildbot
        name: buildbot                   # POST /hooks/buildbot
        token: ${BUILDBOT_TOKEN}         # HttpStatusPush(..., headers={"Authorization": "Bearer ..."})
        builders: [nightly, deploy]      # unset: every builder (or pick them by `tags`)
        level: "912"                     # the default; per builder or tag:
        builder_levels: {deploy: "911"}
        tag_levels: {release: "911"}    # several tags: the first listed here wins
        fail_on: [failure, exception, cancelled]   # add `warnings` to count those too
        started_level: null              # a level (say a blue pulse) to show while a build runs

A finished build whose result is in `fail_on` fires an event keyed by the builder name; a
later build of the same builder that passes (success, or warnings when not in `fail_on`)
resolves it. Skipped and retried builds are ignored, and so are started builds unless
`started_level` is set: those show under their own key (`BUILDER:running`), which the
finished build resolves, so a rebuild never hides the failure it may be fixing.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lamplighter.model import Event, Status, make_event
from lamplighter.sources.webhooks.common import HookSource, TokenSettings, validated

RESULTS = ("success", "warnings", "failure", "skipped", "exception", "retry", "cancelled")
"""Buildbot's result codes 0-6, by position."""
PASSING = frozenset({"success", "warnings"})
HOW = {"success": "passed", "warnings": "passed with warnings", "failure": "failed",
       "exception": "stopped with an exception", "cancelled": "was cancelled"}


class Builder(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    tags: list[str] = []


class BuildbotSettings(TokenSettings):
    builders: list[str] | None = None
    tags: list[str] | None = None
    level: str = "912"
    builder_levels: dict[str, str] = Field(default_factory=dict)
    tag_levels: dict[str, str] = Field(default_factory=dict)
    fail_on: frozenset[Literal["warnings", "failure", "exception", "cancelled"]] = frozenset(
        {"failure", "exception", "cancelled"})
    started_level: str | None = None

    def watches(self, builder: Builder) -> bool:
        if self.builders is None and self.tags is None:
            return True
        return builder.name in (self.builders or ()) or not set(builder.tags).isdisjoint(self.tags or ())

    def level_for(self, builder: Builder) -> str:
        """The builder's own level, else that of the first of its tags in `tag_levels`, else `level`."""
        tagged = (level for tag, level in self.tag_levels.items() if tag in builder.tags)
        return self.builder_levels.get(builder.name) or next(tagged, self.level)


class Build(BaseModel):
    """The build record HttpStatusPush posts (the fields used here; others are allowed)."""

    model_config = ConfigDict(extra="allow")
    number: int
    complete: bool
    results: int | None = None
    state_string: str = ""
    url: str = ""
    builder: Builder


class BuildbotHook(HookSource):
    """POST /hooks/NAME from Buildbot's `reporters.HttpStatusPush`."""

    source_type = "buildbot"
    Settings = BuildbotSettings
    settings: BuildbotSettings

    def events(self, payload: Any, received_at: float) -> list[Event]:
        build = validated(Build, payload)
        running = self.settings.started_level
        if not self.settings.watches(build.builder):
            return []
        if not build.complete:
            return [] if running is None else [self._event(build, running, "started", Status.FIRING, received_at,
                                                           running=True)]
        ended = [] if running is None else [self._event(build, running, "finished", Status.RESOLVED, received_at,
                                                        running=True)]
        return ended + self._outcome(build, received_at)

    def _outcome(self, build: Build, received_at: float) -> list[Event]:
        """A failure fires, a pass resolves; skipped, retried or unknown results say nothing."""
        code = build.results
        result = RESULTS[code] if code is not None and 0 <= code < len(RESULTS) else "unknown"
        if result in self.settings.fail_on:
            status = Status.FIRING
        elif result in PASSING:
            status = Status.RESOLVED
        else:
            return []
        return [self._event(build, self.settings.level_for(build.builder), HOW[result], status, received_at)]

    def _event(self, build: Build, level: str, how: str, status: Status, received_at: float,
               running: bool = False) -> Event:
        builder = build.builder.name
        return make_event(level, f"build {builder} #{build.number} {how}", received_at=received_at,
                          body=f"{build.state_string}\n{build.url}".strip(), sender=builder, source=self.name,
                          key=f"{builder}:running" if running else builder, status=status.value,
                          labels={"builder": builder, "build": str(build.number), "url": build.url})
