"""A fake Telegram Bot API on 127.0.0.1 for the tests (see server.py)."""

from .server import FakeBotAPI

__all__ = ["FakeBotAPI"]
