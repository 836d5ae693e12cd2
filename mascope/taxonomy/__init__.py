"""Failure taxonomies as data: MAST built in, custom ones from YAML."""

from ._load import BUILT_IN, check_taxonomy, get_taxonomy, load_taxonomy
from ._mast import MAST
from ._model import Category, FailureMode, Taxonomy, normalize_mode_name

__all__ = [
    "BUILT_IN",
    "MAST",
    "Category",
    "FailureMode",
    "Taxonomy",
    "check_taxonomy",
    "get_taxonomy",
    "load_taxonomy",
    "normalize_mode_name",
]
