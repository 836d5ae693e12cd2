"""Custom taxonomies from YAML, validated; the built-in ones by name."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from mascope._files import read_yaml
from mascope.errors import ConfigError, did_you_mean

from ._mast import MAST
from ._model import Taxonomy

BUILT_IN: dict[str, Taxonomy] = {"mast": MAST}


def load_taxonomy(path: str | Path) -> Taxonomy:
    """A taxonomy from a YAML file: id, version, name, categories, modes."""
    path = Path(path)
    data = read_yaml(path, what="taxonomy file")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a taxonomy is a mapping with id, version, name, categories and modes"
        )
    try:
        taxonomy = Taxonomy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {where}: {err['msg']}") from None
    check_taxonomy(taxonomy, source=str(path))
    return taxonomy


def check_taxonomy(taxonomy: Taxonomy, *, source: str) -> None:
    cats = [c.id for c in taxonomy.categories]
    if len(set(cats)) != len(cats):
        raise ConfigError(f"{source}: categories: ids must be unique")
    ids = [m.id for m in taxonomy.modes]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"{source}: modes: id {dupes[0]!r} appears twice")
    if not taxonomy.modes:
        raise ConfigError(f"{source}: modes: a taxonomy needs at least one mode")
    for i, m in enumerate(taxonomy.modes):
        if m.category not in cats:
            raise ConfigError(
                f"{source}: modes[{i}].category: no category {m.category!r}{did_you_mean(m.category, cats)}"
            )
        if not m.definition.strip():
            raise ConfigError(f"{source}: modes[{i}].definition: say what the mode is")


def get_taxonomy(name_or_path: str | Path) -> Taxonomy:
    """A built-in taxonomy by id (`mast`) or a custom one from a YAML file."""
    key = str(name_or_path)
    if key in BUILT_IN:
        return BUILT_IN[key]
    if key.endswith((".yaml", ".yml")) or Path(key).exists():
        return load_taxonomy(key)
    raise ConfigError(
        f"unknown taxonomy {key!r}{did_you_mean(key, BUILT_IN)}; use mast or a YAML file"
    )
