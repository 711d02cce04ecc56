"""Errors for bad input: printed as a single line, exit status 2."""

from __future__ import annotations


class ArbframeError(Exception):
    """Bad input or configuration. The CLI prints ``str(error)`` and exits 2."""

    exit_code = 2


class ScenarioError(ArbframeError):
    """A problem at a known place in a scenario file.

    Renders as ``file:line:column: key.path: message`` (line and column 1-based).
    """

    def __init__(
        self, file: str, line: int | None, column: int | None, key_path: str, message: str
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.key_path = key_path
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{where}:{key} {self.message}"


class ConfigError(ArbframeError):
    """Raised by a component about its own config block.

    ``key`` is the path inside the block (e.g. ``("venues", "binance")``); the runner adds
    the block's place in the scenario and reports ``file:line:col: feeds[0].venues.binance``.
    """

    def __init__(self, message: str, key: tuple[str | int, ...] = ()) -> None:
        self.message = message
        self.key = key
        super().__init__(message)


class PluginError(ArbframeError):
    """A plugin's registration refused (bad class, duplicate type, invalid config schema).

    ``build_registry`` records it as a broken plugin rather than aborting; its message names
    the class or type, not the plugin (the broken-plugin record does that).
    """
