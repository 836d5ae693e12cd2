"""Model strings and the settings they are combined with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mascope.errors import AuthenticationError, ConfigError
from mascope.models import (
    LocalModel,
    ModelSpec,
    OpenAIModel,
    PriceTable,
    Usage,
    get_model,
    parse_model_string,
)
from mascope.settings import Settings


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("local", ModelSpec("local")),
        ("local:/models/x.gguf", ModelSpec("local", "/models/x.gguf")),
        ("openai:gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini")),
        (
            "openai:smol@http://127.0.0.1:8000/v1",
            ModelSpec("openai", "smol", "http://127.0.0.1:8000/v1"),
        ),
        ("scripted:replies.yaml", ModelSpec("scripted", "replies.yaml")),
    ],
)
def test_model_strings(text: str, spec: ModelSpec) -> None:
    assert parse_model_string(text) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("foo:bar", "unknown model backend 'foo'"),
        ("opena:gpt-4o", "did you mean 'openai'"),
        ("gpt-4o", "did you mean 'openai:gpt-4o'"),
        ("openai:", "no model name"),
        ("openai:@http://x/v1", "no model name before '@'"),
        ("openai:m@127.0.0.1:8000", "not an http(s) URL"),
        ("local:", "empty path"),
    ],
)
def test_malformed_model_strings(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_model_string(text)


def test_openai_needs_a_key_for_openai_itself() -> None:
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY is not set"):
        get_model("openai:gpt-4o-mini", settings=Settings())


def test_openai_key_and_url_from_settings() -> None:
    settings = Settings.load(
        {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:1234/v1"}
    )
    model = get_model("openai:gpt-4o-mini", settings=settings)
    assert isinstance(model, OpenAIModel)
    assert model.base_url == "http://127.0.0.1:1234/v1"
    assert model.model_id == "openai:gpt-4o-mini@http://127.0.0.1:1234/v1"


def test_local_servers_need_no_key() -> None:
    model = get_model("openai:any@http://127.0.0.1:9/v1", settings=Settings())
    assert model.model_id == "openai:any@http://127.0.0.1:9/v1"


def test_retry_settings_reach_the_model() -> None:
    settings = Settings.load({"MASCOPE_MAX_RETRIES": "1", "MASCOPE_TIMEOUT": "2.5"})
    model = get_model("openai:m@http://127.0.0.1:9/v1", settings=settings)
    assert model.retry.max_retries == 1 and model.retry.timeout == 2.5


def test_default_local_model_is_the_embedded_one() -> None:
    model = get_model("local", settings=Settings.load({"MASCOPE_LOCAL_CTX": "1024"}))
    assert isinstance(model, LocalModel)
    assert model.model_id == "local" and model.n_ctx == 1024
    assert model.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_prices_known_dated_and_unknown() -> None:
    prices = PriceTable()
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert prices.cost("gpt-4o-mini", usage) == pytest.approx(0.75)
    assert prices.cost("gpt-4o-mini-2024-07-18", usage) == pytest.approx(0.75)
    assert prices.cost("gpt-4o-2024-08-06", usage) == pytest.approx(12.5)
    assert prices.cost("my-own-model", usage) is None


def test_price_file_overrides(tmp_path: Path) -> None:
    file = tmp_path / "prices.yaml"
    file.write_text("gpt-4o-mini: {input: 1, output: 2}\nmine: {input: 3, output: 4}\n")
    settings = Settings.load({"MASCOPE_PRICES": str(file), "OPENAI_API_KEY": "sk-x"})
    model = get_model("openai:mine", settings=settings)
    assert model.prices.cost("mine", Usage(input_tokens=10**6)) == 3
    assert model.prices.cost("gpt-4o-mini", Usage(output_tokens=10**6)) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "must map model names"),
        ("m: {input: cheap}", "model 'm' needs numeric 'input' and 'output'"),
        ("m: [", "not valid JSON or YAML"),
    ],
)
def test_bad_price_files(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "prices.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=message):
        PriceTable.from_file(file)
