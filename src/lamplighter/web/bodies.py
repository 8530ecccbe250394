"""The one reader of JSON request bodies for every route: bounded, then validated by a pydantic model."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from lamplighter.untrusted import load_json

M = TypeVar("M", bound=BaseModel)


async def parse_json(request: Request, model: type[M], empty: str = "") -> M:
    """Validate the raw body as JSON whatever the Content-Type says (curl -d sends a form type).

    The JSON is read by the one bounded parser every intake uses (PayloadError: 400 or 413).
    """
    data = load_json(await request.body() or empty.encode())
    if not isinstance(data, dict):
        raise RequestValidationError([{"type": "model_type", "loc": ("body",), "msg": "Input should be an object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
