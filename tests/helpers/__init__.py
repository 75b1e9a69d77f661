"""Machinery behind the tests' shared fixtures (conftest.py holds the fixtures themselves)."""
