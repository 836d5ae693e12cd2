"""Importing Who&When, MAD and mascope JSONL; bad files write nothing."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mascope.errors import ConfigError, ImportFormatError
from mascope.traces import TraceStore, export_runs, import_paths


def test_all_184_who_and_when_files_with_gold_labels_intact(
    store: TraceStore, datasets: Path
) -> None:
    root = datasets / "who_and_when"
    report = import_paths(store, "whowhen", [root])
    files = sorted(root.rglob("*.json"))
    assert report.files == len(files) == 184 and report.runs == 184
    by_file = {}
    for run in store.list_runs(limit=500, source="whowhen"):
        by_file[(run.team.split("/")[1], run.metadata_["file"])] = run
    for path in files:
        gold = json.loads(path.read_text())
        subset = (
            "algorithm-generated" if path.parent.name == "Algorithm-Generated" else "hand-crafted"
        )
        run = by_file[(subset, path.name)]
        assert run.task == gold["question"] and run.ground_truth == str(gold["ground_truth"])
        assert run.status == "failed" and run.step_count == len(gold["history"])
        (att,) = store.attributions(run.id)
        assert (att.method, att.agent, att.step_index, att.reason) == (
            "human",
            gold["mistake_agent"],
            int(gold["mistake_step"]),
            gold["mistake_reason"],
        )
        steps = store.steps(run.id)
        step = int(gold["mistake_step"])
        expected_agent = gold["history"][step].get("name") or gold["history"][step]["role"]
        assert steps[step].agent == expected_agent
        assert steps[step].content == gold["history"][step]["content"]
    assert report.steps == sum(len(json.loads(p.read_text())["history"]) for p in files)


def test_reimport_does_not_duplicate(store: TraceStore, datasets: Path) -> None:
    folder = datasets / "who_and_when" / "Algorithm-Generated"
    first = import_paths(store, "whowhen", [folder])
    again = import_paths(store, "whowhen", [folder])
    assert (first.runs, again.runs, again.skipped) == (126, 0, 126)
    assert store.count_runs() == 126


def test_mad_records_map_labels_by_name(store: TraceStore, datasets: Path) -> None:
    file = datasets / "mast" / "mad_human_sample_4records.json"
    records = json.loads(file.read_text())
    report = import_paths(store, "mad", [file])
    assert report.runs == 4
    runs = {
        (r.metadata_["round"], r.metadata_["trace_id"]): r for r in store.list_runs(source="mad")
    }
    for record in records:
        run = runs[(record["round"], record["trace_id"])]
        assert run.team == record["mas_name"]
        assert run.step_count > 1  # every sample's framework markers were recognised
        labels = store.annotations(run.id)
        annotators = {a.annotator for a in labels}
        assert annotators == {"human:annotator_1", "human:annotator_2", "human:annotator_3"}
        for raw in record["annotations"]:
            name = raw["failure mode"].split("\n")[0]
            if "Witholding" in name or "withholding" in name.lower():
                mine = [
                    a for a in labels if a.mode == "FM-2.4" and a.annotator == "human:annotator_1"
                ]
                assert [a.present for a in mine] == [raw["annotator_1"]]
    newest = runs[("Generlazability", 16)]
    assert {a.mode for a in store.annotations(newest.id)} == {
        f"FM-{c}.{m}" for c, n in ((1, 5), (2, 6), (3, 3)) for m in range(1, n + 1)
    }
    oldest = runs[("Round 1", 2)]
    unmapped = {u["label"] for u in oldest.metadata_["unmapped_labels"]}
    assert "3.4 Waiting for known information" in unmapped


def test_jsonl_round_trip_is_lossless(store: TraceStore, tmp_path: Path, datasets: Path) -> None:
    # From each backend into a SQLite file and out again: byte for byte the same file.
    with store as a:
        import_paths(a, "mad", [datasets / "mast" / "mad_human_sample_4records.json"])
        import_paths(a, "whowhen", [datasets / "who_and_when" / "Hand-Crafted"])
        native = a.start_run(team="t", task="native", spec={"x": 1}, metadata={"m": [1, 2]})
        a.append_step(
            native, agent="a", kind="tool_call", data={"arguments": {"q": 1}}, latency_s=0.25
        )
        a.add_attribution(
            native, {"method": "counterfactual", "agent": "a", "step_index": 0, "verified": True}
        )
        a.finish_run(native, status="failed", final_answer="42")
        ids = [r.id for r in a.list_runs(limit=1000)]
        export_runs(a, ids, "jsonl", tmp_path / "one.jsonl")
    with TraceStore(tmp_path / "b.db") as b:
        report = import_paths(b, "jsonl", [tmp_path / "one.jsonl"])
        assert report.runs == len(ids)
        export_runs(b, ids, "jsonl", tmp_path / "two.jsonl")
        again = import_paths(b, "jsonl", [tmp_path / "one.jsonl"])
        assert again.skipped == len(ids)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()


# -- bad input --------------------------------------------------------------------

VALID = {
    "question": "How many?",
    "ground_truth": "3",
    "history": [
        {"content": "Let me count.", "role": "assistant", "name": "Counter"},
        {"content": "Three.", "role": "assistant", "name": "Checker"},
    ],
    "mistake_agent": "Counter",
    "mistake_step": "0",
    "mistake_reason": "counted wrong",
}


def _assert_rejected(store: TraceStore, fmt: str, files: list[Path], *needles: str) -> str:
    with pytest.raises(ImportFormatError) as info:
        import_paths(store, fmt, files)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    assert store.count_runs() == 0, "nothing may be written"
    return message


def test_a_bad_file_among_good_ones_writes_nothing(store: TraceStore, tmp_path: Path) -> None:
    good = tmp_path / "1.json"
    good.write_text(json.dumps(VALID))
    bad = tmp_path / "2.json"
    bad.write_text(json.dumps({**VALID, "history": [{"content": 7, "role": "user"}]}))
    _assert_rejected(
        store, "whowhen", [good, bad], str(bad), "record 1", "field history[0].content"
    )


def test_a_bad_record_in_a_multi_record_file_writes_nothing(
    store: TraceStore, tmp_path: Path, datasets: Path
) -> None:
    records = json.loads((datasets / "mast" / "mad_human_sample_4records.json").read_text())
    records[2]["annotations"][0]["annotator_2"] = "yes"
    file = tmp_path / "mad.json"
    file.write_text(json.dumps(records))
    _assert_rejected(
        store, "mad", [file], "record 3", "annotations[0].annotator_2", "true or false"
    )


def test_out_of_range_step_and_bad_index(store: TraceStore, tmp_path: Path) -> None:
    file = tmp_path / "x.json"
    file.write_text(json.dumps({**VALID, "mistake_step": "9"}))
    _assert_rejected(store, "whowhen", [file], "mistake_step", "outside the history")
    file.write_text(json.dumps({**VALID, "mistake_step": "first"}))
    _assert_rejected(store, "whowhen", [file], "field mistake_step", "0-based step index")


def test_not_json_and_unknown_format(store: TraceStore, tmp_path: Path) -> None:
    binary = tmp_path / "b.json"
    binary.write_bytes(bytes(range(256)))
    _assert_rejected(store, "whowhen", [binary], str(binary), "not UTF-8")
    with pytest.raises(
        ConfigError, match=r"unknown import format 'whowen'.*did you mean 'whowhen'"
    ):
        import_paths(store, "whowen", [binary])
    with pytest.raises(ConfigError, match="does not exist"):
        import_paths(store, "jsonl", [tmp_path / "none.jsonl"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=0, max_value=len(json.dumps(VALID)) - 1))
def test_truncated_files_are_rejected(tmp_path: Path, cut: int) -> None:
    file = tmp_path / f"t{cut}.json"
    file.write_text(json.dumps(VALID)[:cut])
    with TraceStore(tmp_path / f"t{cut}.db") as store:
        _assert_rejected(store, "whowhen", [file], str(file))


def _wrong_types() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.integers(),
        st.booleans(),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(string.ascii_letters, max_size=3), st.integers(), max_size=2),
    )


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(
        [
            "question",
            "history",
            "mistake_agent",
            "mistake_step",
            "mistake_reason",
            "history.0",
            "history.0.content",
            "history.1.role",
        ]
    ),
    value=_wrong_types(),
    drop=st.booleans(),
)
def test_fields_of_the_wrong_type_are_named(
    tmp_path: Path, field: str, value: Any, drop: bool
) -> None:
    record = json.loads(json.dumps(VALID))
    target: Any = record
    *path, last = field.split(".")
    for part in path:
        target = target[int(part)] if part.isdigit() else target[part]
    key: Any = int(last) if last.isdigit() else last
    if (
        field == "mistake_step"
        and isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value < 2
    ):
        value = None  # a valid index is not malformed
    if drop and isinstance(target, dict):
        del target[key]
    else:
        target[key] = value
    file = tmp_path / "r.json"
    file.write_text(json.dumps(record))
    with TraceStore(tmp_path / f"{abs(hash((field, repr(value), drop)))}.db") as store:
        message = _assert_rejected(store, "whowhen", [file], str(file), "record 1")
    assert "field" in message


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    line=st.integers(min_value=1, max_value=3),
    garbage=st.sampled_from(
        [
            "{",
            "[]",
            '{"run": 5}',
            '{"run": {"id": 1}}',
            "null",
            '{"run": {"id": "X", "status": "weird"}}',
        ]
    ),
)
def test_jsonl_bad_lines_name_the_record(tmp_path: Path, line: int, garbage: str) -> None:
    good = {"format": "mascope.run/1", "run": {"id": "R{}"}, "steps": []}
    lines = [json.dumps({**good, "run": {"id": f"R{i}"}}) for i in range(1, 4)]
    lines[line - 1] = garbage
    file = tmp_path / "x.jsonl"
    file.write_text("\n".join(lines) + "\n")
    with TraceStore(tmp_path / f"j{line}{abs(hash(garbage))}.db") as store:
        _assert_rejected(store, "jsonl", [file], str(file), f"record {line}")


@pytest.mark.parametrize("step", ["\u00b2", "\u2460", "1\u00b9"])  # superscript, circled digits
def test_a_mistake_step_of_unicode_digits_is_a_format_error(tmp_path: Path, step: str) -> None:
    file = tmp_path / "r.json"
    file.write_text(json.dumps({**VALID, "mistake_step": step}))
    with TraceStore(tmp_path / "s.db") as store:
        _assert_rejected(store, "whowhen", [file], str(file), "mistake_step")


@pytest.mark.parametrize("label", ["", "   ", "\n"])
def test_a_mad_label_with_no_name_is_a_format_error(tmp_path: Path, label: str) -> None:
    file = tmp_path / "mad.json"
    file.write_text(
        json.dumps(
            {"trace": "hello", "annotations": [{"failure mode": label, "annotator_1": True}]}
        )
    )
    with TraceStore(tmp_path / "s.db") as store:
        _assert_rejected(store, "mad", [file], str(file), "annotations[0].failure mode")
        assert store.list_runs() == []


def test_a_device_is_not_a_file_to_import(tmp_path: Path) -> None:
    from mascope.errors import ConfigError

    with TraceStore(tmp_path / "s.db") as store, pytest.raises(ConfigError) as info:
        import_paths(store, "jsonl", [Path("/dev/null")])
    assert "/dev/null is not a regular file" in str(info.value)
