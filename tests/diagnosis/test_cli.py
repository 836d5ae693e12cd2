"""`mascope taxonomy show`, custom taxonomies, and `mascope eval mast`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mascope.cli import app
from mascope.errors import ConfigError
from mascope.taxonomy import MAST, load_taxonomy

from .test_judge import answer

runner = CliRunner()


def test_mast_is_built_in_with_paper_ids() -> None:
    assert MAST.mode_ids == [
        f"FM-{c}.{m}" for c, n in ((1, 5), (2, 6), (3, 3)) for m in range(1, n + 1)
    ]
    assert MAST.mode("FM-3.2").name == "No or incomplete verification"
    assert MAST.mode("FM-3.3").name == "Incorrect verification"
    result = runner.invoke(app, ["taxonomy", "show", "--json"])
    data = json.loads(result.stdout)
    assert len(data["modes"]) == 14 and len(data["categories"]) == 3
    shown = runner.invoke(app, ["taxonomy", "show"])
    assert "FM-2.4" in shown.stdout and "Information withholding" in shown.stdout


def test_custom_taxonomy_from_yaml(tmp_path: Path) -> None:
    good = tmp_path / "t.yaml"
    good.write_text(
        "id: mine\nversion: '1'\nname: Mine\ncategories: [{id: C1, name: Tools}]\n"
        "modes:\n  - {id: T-1, name: Wrong tool, category: C1, definition: Used the wrong tool.}\n"
    )
    assert load_taxonomy(good).mode("T-1").name == "Wrong tool"
    assert "T-1" in runner.invoke(app, ["taxonomy", "show", str(good)]).stdout
    bad = tmp_path / "b.yaml"
    bad.write_text(good.read_text().replace("category: C1", "category: C2"))
    with pytest.raises(ConfigError, match=r"modes\[0\].category: no category 'C2'"):
        load_taxonomy(bad)
    result = runner.invoke(app, ["taxonomy", "show", str(bad)])
    assert result.exit_code == 2 and "no category 'C2'" in result.stderr


def test_eval_mast_reports_agreement_beside_humans_and_published(
    tmp_path: Path, datasets: Path
) -> None:
    file = datasets / "mast" / "mad_human_sample_4records.json"
    script = tmp_path / "judge.json"
    script.write_text(json.dumps([answer({"FM-1.1": [0], "FM-3.2": [0]}) for _ in range(4)]))
    result = runner.invoke(
        app, ["eval", "mast", str(file), "--model", f"scripted:{script}", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["traces"] == 4
    pooled = data["pooled"]
    assert (
        pooled["n"] > 40 and pooled["tp"] + pooled["fp"] == 8
    )  # two modes said present in each of 4 traces
    assert 0.0 < data["humans_kappa"] <= 1.0
    assert data["published"]["o1 few-shot (MAST paper)"]["kappa"] == 0.77
    table = runner.invoke(app, ["eval", "mast", str(file), "--model", f"scripted:{script}"])
    assert "humans among themselves" in table.stdout and "o1 few-shot" in table.stdout
