"""Imported ids and numbers are checked; deep or huge input is one line; nothing is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mascope.cli import app
from mascope.errors import MascopeError
from mascope.traces import TraceStore, file_safe, import_paths, is_valid_id, new_id

from ..test_cli import assert_one_line_error

runner = CliRunner()


def bundle(run_id: str = "01JABCDEFGHJKMNPQRSTVWXYZ0", **run: Any) -> dict[str, Any]:
    return {
        "format": "mascope.run/1",
        "run": {"id": run_id, "team": "t", "task": "x", "status": "failed", "metadata": {}, **run},
        "steps": [{"index": 0, "agent": "a", "content": "hi"}],
        "annotations": [],
        "attributions": [],
    }


def write_jsonl(tmp_path: Path, *records: dict[str, Any]) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_good_bundle_imports(store: TraceStore, tmp_path: Path) -> None:
    report = import_paths(store, "jsonl", [write_jsonl(tmp_path, bundle())])
    assert report.runs == 1


@pytest.mark.parametrize(
    "bad_id",
    ["../../etc/passwd", "a/b", "..", ".hidden", "", "x" * 65, "a b", "id\x1b[2J", "ü", "a;rm -rf"],
)
def test_path_like_or_odd_run_ids_are_refused(
    store: TraceStore, tmp_path: Path, bad_id: str
) -> None:
    path = write_jsonl(tmp_path, bundle(), bundle(bad_id))
    with pytest.raises(MascopeError) as info:
        import_paths(store, "jsonl", [path])
    message = str(info.value)
    assert message.startswith(f"{path}: record 2: field run.id: not a valid id"), message
    assert "\n" not in message
    assert store.count_runs() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["run"].update(parent_run_id="../x"), "run.parent_run_id"),
        (
            lambda b: b["attributions"].append({"id": "../a", "method": "human", "agent": "a"}),
            "attributions[0].id",
        ),
        (
            lambda b: b["annotations"].append(
                {"id": "a/b", "mode": "FM-1.1", "present": True, "annotator": "human:x"}
            ),
            "annotations[0].id",
        ),
        (lambda b: b["run"].update(fork_step=10**30), "run.fork_step"),
        (lambda b: b["run"].update(input_tokens=10**20), "run.input_tokens"),
        (lambda b: b["steps"][0].update(output_tokens=-(10**20)), "steps[0].output_tokens"),
    ],
)
def test_other_ids_and_numbers_are_checked(
    store: TraceStore, tmp_path: Path, change: Any, field: str
) -> None:
    data = bundle()
    change(data)
    path = write_jsonl(tmp_path, data)
    with pytest.raises(MascopeError) as info:
        import_paths(store, "jsonl", [path])
    assert f"record 1: field {field}:" in str(info.value), str(info.value)
    assert store.count_runs() == 0


def test_cli_import_of_a_bad_id_writes_no_store(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path, bundle("../../etc/passwd"))
    db = tmp_path / "new.db"
    result = runner.invoke(app, ["runs", "import", "jsonl", str(path), "--db", str(db)])
    assert_one_line_error(result, str(path), "record 1", "run.id")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


@pytest.mark.parametrize("fmt", ["jsonl", "whowhen", "mad"])
def test_deep_nesting_is_one_line(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / ("deep.jsonl" if fmt == "jsonl" else "deep.json")
    path.write_text("[" * 50_000 + "]" * 50_000 + "\n")
    db = tmp_path / "d.db"
    with TraceStore(db) as store:
        store.start_run(team="keep")
    before = db.read_bytes()
    result = runner.invoke(app, ["runs", "import", fmt, str(path), "--db", str(db)])
    assert_one_line_error(result, str(path), "nests")
    assert db.read_bytes() == before


def test_deep_json_inside_a_mad_trace_is_split_as_text(store: TraceStore, tmp_path: Path) -> None:
    record = {"trace": "{" + '"a":[' * 5000 + "1" + "]" * 5000 + "}", "annotations": []}
    path = tmp_path / "m.json"
    path.write_text(json.dumps([record]))
    assert import_paths(store, "mad", [path]).runs == 1


def test_ids_mascope_makes_are_valid_and_file_names_are_safe() -> None:
    assert all(is_valid_id(new_id()) for _ in range(100))
    assert is_valid_id("123e4567-e89b-12d3-a456-426614174000")
    for hostile in ["../../etc/passwd", "/abs", "..", "a/../../b", "\x00x", "x" * 500]:
        name = file_safe(hostile)
        assert "/" not in name and not name.startswith(".") and 0 < len(name) <= 64
        assert (Path("/tmp/out") / f"mascope-run-{name}.jsonl").parent == Path("/tmp/out")
