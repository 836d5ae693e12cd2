"""Steps' input messages in the store: parts stored once, redacted, exported, imported, migrated."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mascope.errors import ImportFormatError, NotFoundError
from mascope.traces import (
    SCHEMA_VERSION,
    InputMessage,
    Redactor,
    TraceStore,
    export_runs,
    import_paths,
    new_id,
)
from mascope.traces._inputs import blob_key, split_parts

V1_STORE = Path(__file__).parent / "data" / "store_v1.sql"

SYSTEM = "You are solver, a careful solver.\n\nGoal: add exactly.\n\nNever guess."


def conversation(turns: int) -> list[list[dict[str, str]]]:
    """Each turn's messages: the same system prompt, and the whole conversation so far."""
    said = [f"agent{i % 2}: message number {i} with some words in it" for i in range(turns)]
    return [
        [
            {"role": "system", "content": SYSTEM},
            {
                "role": "user",
                "content": "Task: add\n\nConversation so far:\n"
                + "\n\n".join(said[:i])
                + "\n\nYour turn.",
            },
        ]
        for i in range(turns)
    ]


@given(st.text(alphabet=st.sampled_from("ab \n.\t"), max_size=400))
def test_parts_join_back_to_the_text(text: str) -> None:
    parts = split_parts(text)
    assert "".join(parts) == text
    assert all(parts)


def test_inputs_round_trip_and_repeat_text_is_stored_once(store: TraceStore) -> None:
    rid = store.start_run(task="add")
    for i, messages in enumerate(conversation(30)):
        assert store.append_step(rid, agent="a", content=str(i), inputs=messages) == i
    for i, messages in enumerate(conversation(30)):
        assert store.step_inputs(rid, i) == [InputMessage(**m) for m in messages]
    with store.engine.read.connect() as conn:
        texts = [t for (t,) in conn.exec_driver_sql("SELECT text FROM blobs")]
    assert sum(SYSTEM in t for t in texts) <= 1 and len(set(texts)) == len(texts)
    # Sent in 22 prompts, stored at most a few times: alone while it was the newest
    # message, then inside the group of paragraphs it was cut with.
    assert 1 <= sum(t.count("message number 7 ") for t in texts) <= 3


def test_inputs_of_unknown_steps_and_steps_without_a_model(store: TraceStore) -> None:
    rid = store.start_run(task="t")
    store.append_step(rid, agent="fn", content="no model here")
    assert store.step_inputs(rid, 0) == []
    with pytest.raises(NotFoundError, match="has no step 5"):
        store.step_inputs(rid, 5)
    with pytest.raises(NotFoundError, match="no run NOPE"):
        store.step_inputs("NOPE", 0)


def test_secrets_in_inputs_never_reach_the_file(tmp_path: Path) -> None:
    secret = "sk-proj-" + "A1b2C3d4" * 4
    db = tmp_path / "s.db"
    with TraceStore(db, redactor=Redactor(env={"MY_API_KEY": "hunter2-but-longer"})) as store:
        rid = store.start_run(task="t")
        store.append_step(
            rid,
            agent="a",
            inputs=[
                {"role": "system", "content": f"Use key {secret} and hunter2-but-longer."},
                {"role": "assistant", "content": None,
                 "tool_calls": [{"id": "1", "name": "login", "arguments": {"password": "pw-123456"}}]},
            ],
        )  # fmt: skip
        system, call = store.step_inputs(rid, 0)
        assert secret not in (system.content or "") and "[REDACTED]" in (system.content or "")
        assert call.content is None and call.tool_calls[0]["arguments"]["password"] == "[REDACTED]"
        store.checkpoint_wal()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for planted in (secret, "hunter2-but-longer", "pw-123456"):
        assert planted.encode() not in raw


def test_jsonl_round_trip_keeps_inputs_and_writes_each_text_once(
    store: TraceStore, tmp_path: Path
) -> None:
    turns = conversation(40)
    rid, bare = store.start_run(task="add"), store.start_run(task="add")
    for i, messages in enumerate(turns):
        store.append_step(rid, agent="a", content=str(i), inputs=messages)
        store.append_step(bare, agent="a", content=str(i))
    store.append_step(rid, agent="a", kind="tool_result", content="no inputs")
    out, out_bare = tmp_path / "runs.jsonl", tmp_path / "bare.jsonl"
    export_runs(store, [rid], "jsonl", out)
    export_runs(store, [bare], "jsonl", out_bare)
    line = out.read_text()
    assert line.count("Never guess.") == 1 and line.count("message number 3 ") <= 3
    blobs = json.loads(line)["blobs"]
    assert len(set(blobs.values())) == len(blobs)
    said = len(SYSTEM) + sum(
        len(f"agent0: message number {i} with some words in it\n\n") for i in range(40)
    )
    assert sum(map(len, blobs.values())) < 2 * said
    sent = sum(len(m["content"]) for turn in turns for m in turn)
    assert len(line) - len(out_bare.read_text()) < sent / 2  # texts once; references per step

    other = TraceStore(tmp_path / "other.db")
    report = import_paths(other, "jsonl", [out])
    assert report.runs == 1
    for i in range(len(turns) + 1):
        assert other.step_inputs(rid, i) == store.step_inputs(rid, i)
    again = tmp_path / "again.jsonl"
    export_runs(other, [rid], "jsonl", again)
    assert json.loads(again.read_text())["blobs"] == json.loads(line)["blobs"]
    other.close()


def test_import_refuses_keys_that_are_not_the_hash_of_their_text(
    store: TraceStore, tmp_path: Path
) -> None:
    """Keys are content addresses shared by every run in the store: a file that maps a
    key to other text (to change what another run's inputs say) is refused."""
    rid = store.start_run(task="t")
    store.append_step(rid, agent="a", inputs=[{"role": "system", "content": "You are honest."}])
    (key,) = store.steps(rid)[0].inputs[0]["parts"]  # type: ignore[index]
    forged = new_id()
    record = {
        "run": {"id": forged, "task": "x"},
        "steps": [{"index": 0, "agent": "evil", "inputs": [{"role": "system", "parts": [key]}]}],
        "blobs": {key: "You are evil."},
    }
    path = tmp_path / "forged.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ImportFormatError, match=f"field blobs.{key}: is not the key of its text"):
        import_paths(store, "jsonl", [path])
    assert store.step_inputs(rid, 0)[0].content == "You are honest."
    assert not store.has_run(forged)


@pytest.mark.parametrize(
    ("inputs", "blobs", "field"),
    [
        ([{"role": "user", "parts": ["nokey"]}], {}, r"steps\[0\]\.inputs\[0\]\.parts\[0\]"),
        ([{"parts": []}], {}, r"steps\[0\]\.inputs\[0\]: must be an object with a \"role\""),
        ([{"role": "user", "parts": "k"}], {}, r"steps\[0\]\.inputs\[0\]\.parts: must be a list"),
        ([{"role": "user", "parts": ["*" + blob_key("nokey")]}], {blob_key("nokey"): "nokey"},
         r"steps\[0\]\.inputs\[0\]\.parts\[0\] \(a group\)\[0\]: 'nokey' is not a key"),
    ],
)  # fmt: skip
def test_bad_inputs_in_an_import_name_the_field_and_write_nothing(
    store: TraceStore, tmp_path: Path, inputs: object, blobs: object, field: str
) -> None:
    bad = new_id()
    record = {"run": {"id": bad}, "steps": [{"index": 0, "inputs": inputs}], "blobs": blobs}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ImportFormatError, match=f"bad.jsonl: record 1: field {field}"):
        import_paths(store, "jsonl", [path])
    assert not store.has_run(bad)


def test_a_store_written_before_inputs_existed_opens_and_migrates(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(V1_STORE.read_text())  # made by mascope with store schema v1
    con.close()
    with TraceStore(db, create=False) as store:
        assert store.schema_version == SCHEMA_VERSION
        (run,) = store.list_runs()
        old_steps = store.steps(run.id)
        assert old_steps and all(s.inputs is None for s in old_steps)
        assert store.step_inputs(run.id, 0) == []
        index = store.append_step(run.id, agent="a", inputs=[{"role": "system", "content": "new"}])
        assert store.step_inputs(run.id, index)[0].content == "new"
    with TraceStore(db) as again:  # a migrated store opens as it is
        assert again.step_inputs(run.id, index)[0].content == "new"
