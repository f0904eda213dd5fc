"""Shared fixtures. Each fixture module lives in tests/support/ and is registered here."""

pytest_plugins: list[str] = ["tests.support.router_proc"]
