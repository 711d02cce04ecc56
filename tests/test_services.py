"""The rule for tests that need a real server: skip when it is down, unless
ARBFRAME_REQUIRE_SERVICES=1 (CI), where a service that is down fails the test."""

from __future__ import annotations

import pytest
from conftest import REQUIRE_SERVICES, require_service


def down() -> None:
    raise ConnectionRefusedError("connection refused")


def test_a_service_that_is_down_skips_the_test(monkeypatch):
    monkeypatch.delenv(REQUIRE_SERVICES, raising=False)
    with pytest.raises(pytest.skip.Exception, match="Redis is not reachable"):
        require_service("Redis", down)


def test_a_service_that_is_down_fails_the_test_when_services_are_required(monkeypatch):
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    with pytest.raises(pytest.fail.Exception, match="Redis is not reachable.*must not skip"):
        require_service("Redis", down)


def test_a_service_that_is_up_lets_the_test_run(monkeypatch):
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    require_service("Redis", lambda: None)
