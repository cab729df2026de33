"""Turning user strings into the core's enums, with errors that list the valid choices."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from binance_archive.errors import ConfigurationError

E = TypeVar("E", bound=enum.Enum)


def parse_choice(
    cls: type[E],
    value: object,
    *,
    what: str,
    aliases: Mapping[str, str] | None = None,
    case_sensitive: bool = False,
) -> E:
    """Return the member of ``cls`` named by ``value`` (a member, its value or an alias).

    Raises:
        ConfigurationError: naming the bad value and every valid choice.
    """
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        text = value.strip()
        if aliases:
            text = aliases.get(text if case_sensitive else text.lower(), text)
        for member in cls:
            if member.value == text or (not case_sensitive and str(member.value).lower() == text.lower()):
                return member
    choices = ", ".join(str(m.value) for m in cls)
    raise ConfigurationError(f"unknown {what} {value!r}; valid choices: {choices}")
