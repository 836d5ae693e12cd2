from __future__ import annotations

import pytest

from mascope.errors import ConfigError
from mascope.settings import Settings


def test_defaults() -> None:
    settings = Settings.load({})
    assert settings.db == "mascope.db"
    assert settings.model == "local"
    assert settings.max_retries == 4


def test_flags_beat_environment_beat_defaults() -> None:
    env = {"MASCOPE_MODEL": "openai:gpt-4o", "MASCOPE_DB": "/tmp/x.db"}
    settings = Settings.load(env, model="local", db=None)
    assert settings.model == "local"  # the flag wins
    assert settings.db == "/tmp/x.db"  # the environment fills in


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MASCOPE_MAX_RETRIES": "many"}, "MASCOPE_MAX_RETRIES must be a whole number, got 'many'"),
        ({"MASCOPE_MAX_RETRIES": "-1"}, "must not be negative"),
        ({"MASCOPE_TIMEOUT": "soon"}, "MASCOPE_TIMEOUT must be a number of seconds"),
        ({"MASCOPE_TIMEOUT": "0"}, "greater than 0"),
    ],
)
def test_bad_environment_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.load(env)


def test_blank_variables_count_as_unset() -> None:
    assert Settings.load({"MASCOPE_MODEL": "  "}).model == "local"
