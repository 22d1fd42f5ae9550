"""Shared fixtures; the real-server fixtures live in tests/conftest_services.py."""

pytest_plugins = ["tests.conftest_services"]
