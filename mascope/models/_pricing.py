"""What model calls cost, in US dollars per million tokens."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mascope._files import read_yaml
from mascope.errors import ConfigError

from ._types import Usage

# OpenAI's list prices (USD per 1M tokens: input, output) as published in 2025.
# Prices change: override them with MASCOPE_PRICES=file.json|yaml or a PriceTable.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.00, 60.00),
    "o1-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}


class PriceTable:
    """Maps model names to (input, output) prices per million tokens.

    A dated model name (`gpt-4o-mini-2024-07-18`) takes the price of its
    longest listed prefix (`gpt-4o-mini`).
    """

    def __init__(self, prices: Mapping[str, tuple[float, float]] | None = None):
        self._prices: dict[str, tuple[float, float]] = dict(DEFAULT_PRICES)
        if prices:
            self._prices.update(prices)

    def price(self, model: str) -> tuple[float, float] | None:
        if model in self._prices:
            return self._prices[model]
        best = ""
        for name in self._prices:
            if model.startswith(name + "-") and len(name) > len(best):
                best = name
        return self._prices[best] if best else None

    def cost(self, model: str, usage: Usage) -> float | None:
        """Dollars for `usage` on `model`, or None when the price is unknown."""
        price = self.price(model)
        if price is None:
            return None
        return (usage.input_tokens * price[0] + usage.output_tokens * price[1]) / 1_000_000

    @classmethod
    def from_file(cls, path: str | Path) -> PriceTable:
        """Built-in prices overridden by a JSON/YAML file of
        `{model: {input: USD_per_1M, output: USD_per_1M}}`."""
        path = Path(path)
        raw: Any = read_yaml(path, what="price file (MASCOPE_PRICES)")
        if not isinstance(raw, dict):
            raise ConfigError(
                f"price file {path} must map model names to {{input: ..., output: ...}}"
            )
        prices: dict[str, tuple[float, float]] = {}
        for name, entry in raw.items():
            try:
                prices[str(name)] = (float(entry["input"]), float(entry["output"]))
            except (TypeError, KeyError, ValueError):
                raise ConfigError(
                    f"price file {path}: model {name!r} needs numeric 'input' and 'output' "
                    f"prices per million tokens, e.g. {json.dumps({'input': 0.15, 'output': 0.6})}"
                ) from None
        return cls(prices)
