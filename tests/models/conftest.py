"""Fixtures for the model layer live in tests/conftest.py (the runtime tests share them)."""
