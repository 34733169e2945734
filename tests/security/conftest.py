"""Fixtures of the security tests."""

from tests.e2e.conftest import start_server  # noqa: F401  (fixture: a real `transmute serve` on 127.0.0.1)
