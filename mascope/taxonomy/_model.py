"""Taxonomies as data: categories and failure modes."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field


class Category(BaseModel):
    id: str
    name: str
    description: str = ""


class FailureMode(BaseModel):
    """One failure mode: what it is, how to spot it, and older names for it."""

    id: str
    name: str
    category: str
    definition: str
    indicators: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    """Names this mode had in earlier versions of the taxonomy."""


class Taxonomy(BaseModel):
    id: str
    version: str
    name: str
    categories: list[Category]
    modes: list[FailureMode]

    def mode(self, mode_id: str) -> FailureMode:
        for m in self.modes:
            if m.id == mode_id:
                return m
        raise KeyError(mode_id)

    @property
    def mode_ids(self) -> list[str]:
        return [m.id for m in self.modes]

    def match_name(self, text: str) -> FailureMode | None:
        """The mode whose name or alias matches `text` (case, punctuation and a
        leading code like `2.4` ignored), or None."""
        key = normalize_mode_name(text)
        for m in self.modes:
            if key == normalize_mode_name(m.name) or key in (
                normalize_mode_name(a) for a in m.aliases
            ):
                return m
        return None


_CODE = re.compile(r"^\s*(fm-?)?\d+(\.\d+)?\s*", re.I)


def normalize_mode_name(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    first = _CODE.sub("", first).lower()
    first = first.replace("witholding", "withholding")
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", first).split())
