"""Secrets from the environment that never reach a file, a log or a message.

A scenario names a secret (an API key) as ``api_key: ${BINANCE_API_KEY}``; a plugin marks
the config key with ``"x-secret": true`` in its schema (``arbframe.schema.SECRET``). The
loader refuses a literal value there and keeps a :class:`Secret`: a string that reads as its
``${NAME}`` reference everywhere (``str``, ``repr``, f-strings, JSON, pickles, snapshots) and
gives its value only to ``reveal()``, called where the key is handed to the client library.
"""

from __future__ import annotations

from typing import Any


class Secret(str):
    """The text is the reference (``${NAME}``); ``reveal()`` is the value."""

    _value: str

    def __new__(cls, reference: str, value: str) -> Secret:
        secret = super().__new__(cls, reference)
        secret._value = value
        return secret

    def reveal(self) -> str:
        return self._value

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (a snapshot), copied or deep-copied: the reference only, never the value.
        return (str, (str.__str__(self),))

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self  # immutable: a copy of the scenario keeps the value usable

    def __copy__(self) -> Secret:
        return self


def reveal(value: str | None) -> str | None:
    """The value of a secret (a plain string as it is; None or "" as None)."""
    if isinstance(value, Secret):
        value = value.reveal()
    return value or None
