"""Korean and English: both catalogs complete and compiled, every message of the code in them, and the
language chosen by the configuration (CLI, Slack replies) and by the browser (the pages).

The catalog checks run GNU gettext's own tools (xgettext, msgfmt; Debian package `gettext`, in the
Makefile's TEST_PEERS) and fail when they are missing.
"""

from __future__ import annotations

import gettext
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from lamplighter import i18n
from lamplighter.i18n import _, best_match, using
from lamplighter.model import Event, Outcome, Receipt
from lamplighter.service import Service
from lamplighter.sources.slack import replies
from lamplighter.web.app import create_app
from lamplighter.web.page_text import DASHBOARD_SCRIPT
from tests.daemon import TOKEN, Daemon

LOCALE_DIR = Path(i18n.__file__).parent / "locale"
SOURCES = sorted(str(path) for path in (Path(i18n.__file__).parent).rglob("*.py"))
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: apt-get install gettext (make test installs it)", pytrace=False)
    return found


def compiled(po: Path, tmp_path: Path) -> dict[str, str]:
    """The messages of a .po file as msgfmt compiles them, read back by Python's gettext."""
    mo = tmp_path / f"{po.parent.parent.name}.mo"
    subprocess.run([tool("msgfmt"), "--check-format", "--output-file", str(mo), str(po)], check=True)
    with mo.open("rb") as handle:
        return messages_of(gettext.GNUTranslations(handle))


def messages_of(translations: gettext.GNUTranslations) -> dict[str, str]:
    catalog: dict[str, str] = translations._catalog  # type: ignore[attr-defined]
    return {key: value for key, value in catalog.items() if key}  # "" is the header


def committed(locale: str) -> dict[str, str]:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "lamplighter.mo").open("rb") as handle:
        return messages_of(gettext.GNUTranslations(handle))


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("catalogs")
    return {locale: compiled(LOCALE_DIR / locale / "LC_MESSAGES" / "lamplighter.po", tmp) for locale in i18n.LOCALES}


def test_every_message_is_in_both_catalogs_and_no_translation_is_empty(catalogs: dict[str, dict[str, str]]) -> None:
    english, korean = catalogs["en"], catalogs["ko"]
    assert len(english) > 90
    assert set(english) == set(korean)
    assert [message for message, said in korean.items() if not said.strip()] == []
    assert [message for message, said in english.items() if not said.strip()] == []
    assert all(english[message] == message for message in english)  # English says its ids as they are


def test_the_committed_compiled_catalogs_are_the_po_files(catalogs: dict[str, dict[str, str]]) -> None:
    for locale in i18n.LOCALES:
        assert committed(locale) == catalogs[locale], f"run `make catalogs`: {locale} .mo differs from its .po"


def test_every_message_the_code_says_is_in_the_catalogs(catalogs: dict[str, dict[str, str]], tmp_path: Path) -> None:
    pot = tmp_path / "code.pot"
    subprocess.run([tool("xgettext"), "--language=Python", "--from-code=UTF-8", "--keyword=_", "--keyword=N_",
                    "--no-wrap", f"--output={pot}", *SOURCES], check=True)
    english = tmp_path / "code.po"
    subprocess.run([tool("msgen"), "--no-wrap", "--lang=en", str(pot), f"--output-file={english}"], check=True)
    in_code = set(compiled(english, tmp_path))
    missing = sorted(in_code - set(catalogs["ko"]))
    assert missing == [], f"not in the catalogs (run `make catalogs`, then translate): {missing}"
    unused = sorted(set(catalogs["ko"]) - in_code)
    assert unused == [], f"in the catalogs but no longer in the code (run `make catalogs`): {unused}"


def test_each_translation_keeps_the_placeholders_of_its_message(catalogs: dict[str, dict[str, str]]) -> None:
    for message, said in catalogs["ko"].items():
        assert sorted(PLACEHOLDER.findall(said)) == sorted(PLACEHOLDER.findall(message)), message


@pytest.mark.parametrize(("header", "configured", "chosen"), [
    ("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", "en", "ko"),
    ("en-US,en;q=0.9,ko;q=0.8", "ko", "en"),
    ("fr-FR,fr;q=0.9", "ko", "ko"),  # neither: the configuration's
    ("en;q=0.2, ko;q=0.8", "en", "ko"),  # by quality, not by order
    ("ko;q=0, en", "ko", "en"),  # q=0 means "not this one"
    (None, "en", "en"),
    ("ko;q=oops, en;q=0.5", "en", "en"),
])
def test_the_page_language_is_the_browsers_first_choice_we_speak(header: str | None, configured: str,
                                                                   chosen: str) -> None:
    assert best_match(header, configured) == chosen


def test_a_slack_reply_in_korean() -> None:
    event = Event(level="911", title="결제 API 500", sender="jiwoo")
    receipt = Receipt(id=3, outcome=Outcome.SHOWN, reasons=(), retry_after=None, signal_id=None)
    with using("ko"):
        shown = replies.outcome(event, receipt, 0.0, "U1", in_channel=True)
        refused = replies.no_event(42)
    assert shown.text == "💡 지금 램프에 표시 중: *911* “결제 API 500” (이벤트 3, 보낸 사람 <@U1>)."
    assert refused.text == "기록에 이벤트 42이(가) 없습니다."
    assert replies.no_event(42).text == "No event 42 in the journal."  # outside the block: English


def test_the_configured_locale_is_what_a_service_speaks(service_factory: Callable[..., object]) -> None:
    service_factory("locale: ko\n")
    assert _("Acknowledged") == "확인됨"
    service_factory("")
    assert _("Acknowledged") == "Acknowledged"


def test_an_unknown_locale_is_refused_with_the_choices(tmp_path: Path) -> None:
    from lamplighter.config import parse_config
    from lamplighter.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        parse_config("locale: jp\n", env={}, name="ll.yaml")
    assert raised.value.problems == [("ll.yaml:1 locale", "Input should be 'en' or 'ko'")]


def lamplighter(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lamplighter", *args], env=env, capture_output=True, text=True,
                          timeout=30)


@pytest.mark.slow
def test_the_cli_speaks_the_configured_language(daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    running = daemon("locale: ko\n")
    env = {**os.environ, "LAMPLIGHTER_TOKEN": TOKEN, "LAMPLIGHTER_CONFIG": str(running.config_path),
           "NO_COLOR": "1"}
    env.pop("LAMPLIGHTER_URL", None)
    sent = lamplighter("send", "912", "디스크 부족", env=env)
    assert sent.stdout.strip() == "이벤트 1: 표시됨 — 지금 램프에 표시 중", sent.stderr
    status = lamplighter("status", env=env)
    assert "이벤트 1 표시 중 (912: 디스크 부족)" in status.stdout and "최근 이벤트:" in status.stdout
    bare = lamplighter("snooze", "2", env=env)
    assert "'2'에 단위가 없습니다: 분이면 2m, 시간이면 2h, 초면 2s라고 쓰세요" in bare.stderr
    refused = lamplighter("status", "--token", "wrong-token-0123456789", env=env)
    assert "토큰을 거부했습니다" in refused.stderr and "--token" in refused.stderr
    json_answer = lamplighter("status", "--json", env=env)
    assert '"outcome": "shown"' in json_answer.stdout  # JSON keeps the API's words


@pytest.mark.slow
def test_the_lamp_page_speaks_the_browsers_language(daemon: Callable[..., Daemon]) -> None:
    running = daemon()
    with httpx.Client(base_url=running.url, cookies={"lamplighter_token": TOKEN}) as client:
        korean = client.get("/lamp/desk", headers={"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.8"})
        english = client.get("/lamp/desk", headers={"Accept-Language": "en-GB,en;q=0.9"})
        dashboard = client.get("/dashboard", headers={"Accept-Language": "ko"})
    assert korean.headers["content-language"] == "ko" and '<html lang="ko">' in korean.text
    assert '"hold": "길게 눌러 확인"' in korean.text and '"live": "연결됨"' in korean.text
    assert '"notConnected": "연결 끊김"' in korean.text
    assert english.headers["content-language"] == "en" and '"hold": "Hold to acknowledge"' in english.text
    assert "Accept-Language" in korean.headers["vary"]
    assert '<html lang="ko">' in dashboard.text and ">타임라인<" in dashboard.text and "<title>지금 · Lamplighter" \
        in dashboard.text


# ---- the words the dashboard's scripts write -----------------------------------------------------

STATIC = Path(i18n.__file__).parent / "web" / "static"
WORDS_TABLE = re.compile(r'<script type="application/json" id="words">(.*?)</script>', re.DOTALL)


async def dashboard_words(service: Service, accept_language: str) -> tuple[httpx.Response, dict[str, str]]:
    """The Now page as a browser asking for `accept_language` gets it, and the words table it carries."""
    transport = httpx.ASGITransport(app=create_app(service, TOKEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://lamplighter",
                                 cookies={"lamplighter_token": TOKEN}) as client:
        page = await client.get("/dashboard", headers={"Accept-Language": accept_language})
    found = WORDS_TABLE.search(page.text)
    assert found is not None, "the dashboard carries no words table"
    return page, json.loads(found.group(1))


async def test_the_dashboard_hands_its_scripts_the_words_in_the_browsers_language(
        service_factory: Callable[..., Service]) -> None:
    service = service_factory()
    korean_page, korean = await dashboard_words(service, "ko-KR,ko;q=0.9,en;q=0.8")
    english_page, english = await dashboard_words(service, "en-US,en;q=0.9")
    assert korean_page.headers["content-language"] == "ko" and english_page.headers["content-language"] == "en"
    assert set(korean) == set(english) == set(DASHBOARD_SCRIPT)
    assert korean["live"] == "연결됨" and korean["awayDismiss"] == "알겠습니다"
    assert korean["sounding"] == "사이렌 · 울리는 중" and korean["armed"] == "사이렌 · 대기 중"
    assert korean["escalatesIn"] == "사이렌 {sirens}: {left}"  # placeholders left for the script to fill
    assert english == DASHBOARD_SCRIPT  # English says the messages as written
    assert ">설정된 소스가 없습니다. 이벤트는 HTTP API와 명령줄로 들어옵니다:<" in korean_page.text  # and the markup's
    assert [key for key in korean if korean[key] == english[key] and key != "url"] == []  # every word translated
    assert "unsafe-inline" not in korean_page.headers["content-security-policy"]
    assert re.findall(r'<script(?![^>]*\b(?:src=|type="application/json"))', korean_page.text) == []


def test_every_word_a_dashboard_script_says_is_in_the_table() -> None:
    scripts = {path.name: path.read_text(encoding="utf-8") for path in STATIC.glob("*.js")}
    said = {key for text in scripts.values() for key in re.findall(r'\bsay(?:With)?\("(\w+)"', text)}
    assert len(said) > 60
    assert sorted(said - set(DASHBOARD_SCRIPT)) == []
    assert [name for name, text in scripts.items() if "const WORDS = {" in text] == []  # one source: page_text.py
