"""Korean and English: the message catalog (GNU gettext, read by the standard library's `gettext`).

Every sentence a person reads in a reply, the CLI or a page is written in English in the code,
wrapped in `_()` (or `N_()` where it is stored before it is said, as in a table), and looked
up in `locale/LANG/LC_MESSAGES/lamplighter.mo` at the moment it is said:

    _("event {id} acknowledged by {by}").format(id=7, by="alice")   ->  이벤트 7을(를) alice 님이 확인했습니다

Which language: the configuration's `locale:` (en or ko) for replies, announcements and the
CLI (`set_default`), and for a page the browser's Accept-Language (`using(best_match(...))`
for the request). A message missing from a catalog is said in English.

To add a message: wrap it in `_()`, run `make catalogs` (extracts every `_()`/`N_()` into
locale/lamplighter.pot, writes the English catalog, merges the new entry into the Korean one
and compiles both), write the Korean in the new entry's `msgstr` of locale/ko/LC_MESSAGES/
lamplighter.po, and run `make catalogs` again. tests/test_i18n.py fails while a message is
missing from a catalog or has an empty translation. Placeholders are `{name}`, filled by
`.format(name=...)` after the lookup, so that a translation may put them in its own order.
"""

from __future__ import annotations

import contextlib
import gettext
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from importlib.resources import files
from typing import Final

DOMAIN: Final = "lamplighter"
LOCALES: Final = ("en", "ko")
DEFAULT_LOCALE: Final = "en"

_default = DEFAULT_LOCALE
_current: ContextVar[str | None] = ContextVar("lamplighter_locale", default=None)


def set_default(locale: str) -> None:
    """The language of everything not said to one browser: the configuration's `locale:`."""
    global _default
    _default = locale if locale in LOCALES else DEFAULT_LOCALE


@contextlib.contextmanager
def using(locale: str) -> Iterator[None]:
    """Say everything in `locale` inside the block (one request, one test)."""
    token = _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> str:
    return _current.get() or _default


@cache
def catalog(locale: str) -> gettext.NullTranslations:
    """The compiled catalog of `locale`; English words if it has none."""
    directory = str(files("lamplighter").joinpath("locale"))
    return gettext.translation(DOMAIN, localedir=directory, languages=[locale], fallback=True)


def _(message: str) -> str:
    """`message` in the current language."""
    return catalog(current()).gettext(message)


def N_(message: str) -> str:  # the name xgettext looks for
    """Marks a message for the catalog where it is stored; `_()` translates it where it is said."""
    return message


def best_match(accept_language: str | None, fallback: str | None = None) -> str:
    """The first of LOCALES the browser asks for (`ko-KR,ko;q=0.9,en;q=0.8`), by its q-values; else `fallback`."""
    wanted: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:32]):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = tag.strip().lower().split("-")[0]
        if language in LOCALES and quality > 0:
            wanted.append((-quality, position, language))
    return min(wanted)[2] if wanted else (fallback or _default)
