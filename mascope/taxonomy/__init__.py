"""Failure taxonomies as data: MAST built in, custom ones from YAML."""

from ._mast import MAST
from ._model import Category, FailureMode, Taxonomy, normalize_mode_name

__all__ = ["MAST", "Category", "FailureMode", "Taxonomy", "normalize_mode_name"]
