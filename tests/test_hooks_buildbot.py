"""Buildbot's HttpStatusPush: the captured build records, builder and tag choices, and a real master."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.datastructures import Headers

from lamplighter.errors import EventError
from lamplighter.model import Status
from lamplighter.service import Service
from lamplighter.sources import build_sources
from lamplighter.sources.webhooks import BuildbotHook
from tests.conftest import START, FakeClock
from tests.daemon import Daemon
from tests.peers.buildbot import Buildbot
from tests.test_hooks_common import hook_client, sample

TOKEN = "bb-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def hook(**settings: Any) -> BuildbotHook:
    source = build_sources([{"type": "buildbot", "token": TOKEN, **settings}], FakeClock())["buildbot"]
    assert isinstance(source, BuildbotHook)
    return source


def build(kind: str = "failure", builder: str | None = None, tags: list[str] | None = None,
          **fields: Any) -> dict[str, Any]:
    """A captured build record (failure, success or started), with other fields, builder or tags."""
    record = copy.deepcopy(sample(f"buildbot-httpstatuspush-{kind}.json")) | fields
    if builder is not None:
        record["builder"]["name"] = builder
    if tags is not None:
        record["builder"]["tags"] = tags
    return record


def parse(source: BuildbotHook, record: dict[str, Any]) -> list[Any]:
    return source.parse(Headers(AUTH), json.dumps(record).encode(), START)


def test_the_captured_failure_fires_a_912_keyed_by_the_builder() -> None:
    [event] = parse(hook(), build("failure"))
    assert (event.level, event.title, event.key, event.status, event.sender) == (
        "912", "build failing #1 failed", "failing", Status.FIRING, "failing")
    assert event.body == "failed 'false' (failure)\nhttp://127.0.0.1:19010/#/builders/1/builds/1"
    assert event.labels == {"builder": "failing", "build": "1", "url": "http://127.0.0.1:19010/#/builders/1/builds/1"}


def test_the_captured_success_resolves_its_builder() -> None:
    [event] = parse(hook(), build("success"))
    assert (event.title, event.key, event.status) == ("build passing #1 passed", "passing", Status.RESOLVED)


@pytest.mark.parametrize(("results", "outcome"), [
    (0, ("resolved", "passed")), (1, ("resolved", "passed with warnings")), (2, ("firing", "failed")),
    (3, None), (4, ("firing", "stopped with an exception")), (5, None), (6, ("firing", "was cancelled")),
    (7, None), (None, None),
])
def test_each_result_code(results: int | None, outcome: tuple[str, str] | None) -> None:
    events = parse(hook(), build("failure", results=results))
    assert [(e.status.value, e.title.removeprefix("build failing #1 ")) for e in events] == (
        [outcome] if outcome else [])


def test_warnings_can_count_as_a_failure() -> None:
    [event] = parse(hook(fail_on=["failure", "warnings"]), build("failure", results=1))
    assert event.status is Status.FIRING
    assert parse(hook(fail_on=["failure"]), build("failure", results=4)) == []


def test_started_builds_are_ignored_unless_a_started_level_is_set() -> None:
    assert parse(hook(), build("started")) == []
    source = hook(started_level="door")
    [started] = parse(source, build("started"))
    assert (started.level, started.key, started.title, started.status) == (
        "door", "failing:running", "build failing #1 started", Status.FIRING)
    ends_run, failed = parse(source, build("failure"))
    assert (ends_run.key, ends_run.status, failed.key, failed.status) == (
        "failing:running", Status.RESOLVED, "failing", Status.FIRING)
    [only_ends_run] = parse(source, build("failure", results=3))  # a skipped build ends the run all the same
    assert (only_ends_run.key, only_ends_run.status) == ("failing:running", Status.RESOLVED)


def test_chosen_builders_or_tags_and_a_level_per_builder_or_tag() -> None:
    source = hook(builders=["deploy"], tags=["release"], builder_levels={"deploy": "911"},
                  tag_levels={"release": "door", "nightly": "911"})
    assert parse(source, build(builder="docs")) == []
    assert [e.level for e in parse(source, build(builder="deploy", tags=["release"]))] == ["911"]
    assert [e.level for e in parse(source, build(builder="app", tags=["nightly", "release"]))] == ["door"]
    assert [e.level for e in parse(hook(tag_levels={"nightly": "911"}), build(tags=["nightly"]))] == ["911"]
    assert [e.level for e in parse(hook(level="door"), build())] == ["door"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda b: b.pop("builder"), "builder: Field required"),
    (lambda b: b["builder"].update(name=""), "builder.name: String should have at least 1 character"),
    (lambda b: b.update(complete="maybe"), "complete: Input should be a valid boolean"),
])
def test_a_malformed_record_names_the_field(change: Callable[[dict[str, Any]], Any], message: str) -> None:
    record = build()
    change(record)
    with pytest.raises(EventError, match=message):
        parse(hook(), record)


async def test_failures_dedup_until_a_success_resolves_them(service_factory: Callable[..., Service],
                                                           clock: FakeClock) -> None:
    service = service_factory(f"sources:\n  - {{type: buildbot, name: ci, token: {TOKEN}}}\n")
    async with hook_client(service) as client:
        outcomes = []
        for kind in ("started", "failure", "failure", "success", "failure"):
            answer = await client.post("/hooks/ci", json=build(kind, builder="nightly"), headers=AUTH)
            assert answer.status_code == 202
            outcomes.append([r["outcome"] for r in answer.json()["events"]])
            clock.advance(30)
    assert outcomes == [[], ["shown"], ["deduplicated"], ["resolved"], ["shown"]]


# ---- a real Buildbot -------------------------------------------------------------------------


@pytest.fixture
def buildbot(tmp_path: Path) -> Iterator[Callable[[str], Buildbot]]:
    started: list[Buildbot] = []

    def start(push_url: str) -> Buildbot:
        started.append(Buildbot(tmp_path / "buildbot", push_url, TOKEN).start())
        return started[-1]

    yield start
    for master in started:
        master.stop()


def wait_until(check: Callable[[], Any], timeout: float = 30.0) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "condition not reached in time"
        time.sleep(0.05)
    return time.monotonic() - start


def desk(client: httpx.Client) -> dict[str, Any]:
    return {lamp["name"]: lamp for lamp in client.get("/api/lamps").json()}["desk"]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_a_real_buildbot_failure_turns_the_lamp_yellow_and_the_next_passing_build_restores_it(
        daemon: Callable[..., Daemon], buildbot: Callable[[str], Buildbot]) -> None:
    d = daemon("levels: {912: {hold: 10m}}\n"
               f"sources:\n  - {{type: buildbot, name: ci, token: {TOKEN}, builders: [flaky]}}\n")
    master = buildbot(f"{d.url}/hooks/ci")
    with d.client() as client:
        initial = desk(client)["state"]
        master.fail_flag.touch()
        master.force("flaky")
        wait_until(lambda: (desk(client)["state"] or {}).get("color") == "#ffd000")
        assert desk(client)["showing"]["title"] == "build flaky #1 failed"

        master.fail_flag.unlink()
        master.force("flaky")
        wait_until(lambda: desk(client)["showing"] is None)
        assert desk(client)["state"] == initial
        events = [(e["outcome"], e["key"], e["title"]) for e in reversed(client.get("/api/events").json())]
    assert [b["results"] for b in master.builds()] == [2, 0]
    assert events == [("shown", "flaky", "build flaky #1 failed"),  # the two `started` posts are ignored
                      ("resolved", "flaky", "build flaky #2 passed")]
