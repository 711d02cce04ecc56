"""``fake_venues``: a started ``FakeVenues`` for one test (stopped after it).

from fakevenues.fixture import fake_venues  # noqa: F401 - a fixture
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import FakeVenues


@pytest.fixture
def fake_venues() -> Iterator[FakeVenues]:
    with FakeVenues() as venues:
        yield venues
