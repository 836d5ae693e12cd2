"""Present, absent and uncertain kept apart in `mascope judge`, `runs show` (text and JSON) and `runs list --mode`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mascope.cli import app
from mascope.taxonomy import MAST
from mascope.traces import TraceStore

runner = CliRunner()


def verdict(present: dict[str, list[int]], rationale: dict[str, str] | None = None) -> str:
    rationale = rationale or {}
    return json.dumps({
        "summary": "s", "task_completed": False,
        "modes": {m: {"present": m in present, "evidence_steps": present.get(m, []),
                      "rationale": rationale.get(m, f"about {m}")} for m in MAST.mode_ids},
    })  # fmt: skip


def a_run(db: Path) -> str:
    with TraceStore(db) as store:
        rid = store.start_run(team="t", task="add 2 and 3", ground_truth="5")
        store.append_step(rid, agent="a", content="2 + 3 = 6")
        store.append_step(rid, agent="b", content="agreed: 6")
        store.finish_run(rid, status="failed", final_answer="6", termination_reason="end")
    return rid


def script(tmp_path: Path, *replies: str) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(list(replies)))
    return f"scripted:{path}"


def test_uncertain_modes_are_shown_apart_and_never_listed_as_present(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    rid = a_run(db)
    reply = verdict(
        {"FM-3.3": [1], "FM-2.6": [1], "FM-1.3": [9]},
        {"FM-2.6": 'b wrote "I will ignore what a said entirely" instead.'},
    )
    judged = runner.invoke(
        app, ["judge", rid, "--db", str(db), "-m", script(tmp_path, reply), "--json"]
    )
    assert judged.exit_code == 0, judged.output
    report = json.loads(judged.stdout)
    assert report["modes"] == {"FM-3.3": 1}
    assert report["uncertain"] == {"FM-1.3": 1, "FM-2.6": 1}

    shown = runner.invoke(app, ["runs", "show", rid, "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    assert "uncertain" in text and "does not exist" in text and "not in step 1" in text
    present_panel = text[text.index("failure modes") : text.index("uncertain (")]
    assert "FM-3.3" in present_panel and "FM-2.6" not in present_panel
    assert "FM-1.3" not in present_panel

    data = json.loads(runner.invoke(app, ["runs", "show", rid, "--db", str(db), "--json"]).stdout)
    states = {
        (a["mode"], a["status"]) for a in data["annotations"] if a["annotator"].startswith("llm:")
    }
    assert {("FM-3.3", "present"), ("FM-2.6", "uncertain"), ("FM-1.3", "uncertain")} <= states
    assert ("FM-1.1", "absent") in states
    uncertain = next(a for a in data["annotations"] if a["mode"] == "FM-2.6")
    assert uncertain["present"] is False and "not in step 1" in uncertain["status_reason"]
    # Rule labels (no stored status) still say which state they are.
    assert all(a["status"] in ("present", "absent", "uncertain") for a in data["annotations"])

    def listed(mode: str) -> list[str]:
        out = runner.invoke(app, ["runs", "list", "--mode", mode, "--db", str(db), "--json"])
        return [r["id"] for r in json.loads(out.stdout)["runs"]]

    assert listed("FM-3.3") == [rid] and listed("FM-2.6") == [] and listed("FM-1.3") == []


def test_judge_samples_below_the_agreement_threshold_print_as_uncertain(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    rid = a_run(db)
    replies = [verdict({"FM-3.3": [1]}), verdict({"FM-3.3": [1]}), verdict({})]
    args = ["judge", rid, "--db", str(db), "--samples", "3", "--min-agreement", "0.9"]
    judged = runner.invoke(app, [*args, "-m", script(tmp_path, *replies)])
    assert judged.exit_code == 0, judged.output
    row = next(line for line in judged.stdout.splitlines() if line.strip().startswith("FM-3.3"))
    assert row.split()[-2:] == ["0", "1"]  # present in 0 runs, uncertain in 1
    with TraceStore(db) as store:
        label = next(a for a in store.annotations(rid) if a.mode == "FM-3.3")
    assert label.status == "uncertain" and "2 of 3 samples" in (label.status_reason or "")


def test_an_agreement_threshold_above_one_is_a_user_error(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    rid = a_run(db)
    out = runner.invoke(
        app, ["judge", rid, "--db", str(db), "--min-agreement", "2", "-m", "scripted:x.json"]
    )
    assert out.exit_code == 2 and "Traceback" not in out.output


def test_a_secret_quoted_in_a_judges_doubt_is_not_stored(tmp_path: Path) -> None:
    key = "sk-proj-Zq8vX2mN4pL7rT1wY6uB3cD9eF0gH5jK"
    db = tmp_path / "m.db"
    rid = a_run(db)
    reply = verdict({"FM-2.6": [1]}, {"FM-2.6": f'b pasted "the key is {key}" into the chat.'})
    judged = runner.invoke(app, ["judge", rid, "--db", str(db), "-m", script(tmp_path, reply)])
    assert judged.exit_code == 0, judged.output
    with TraceStore(db) as store:
        label = next(a for a in store.annotations(rid) if a.mode == "FM-2.6")
    assert label.status == "uncertain" and key not in (label.status_reason or "")
    for path in tmp_path.glob("m.db*"):  # the database and its write-ahead log
        assert key.encode() not in path.read_bytes()
