"""`mascope runs ...` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mascope.cli import app
from mascope.traces import TraceStore

from .test_cli import assert_one_line_error

runner = CliRunner()


def test_import_list_show_export(tmp_path: Path, datasets: Path) -> None:
    db = str(tmp_path / "c.db")
    result = runner.invoke(
        app,
        ["runs", "import", "whowhen", str(datasets / "who_and_when" / "Hand-Crafted"), "--db", db],
    )
    assert result.exit_code == 0, result.output
    assert "imported 58 runs" in result.stdout
    again = runner.invoke(
        app,
        ["runs", "import", "whowhen", str(datasets / "who_and_when" / "Hand-Crafted"), "--db", db],
    )
    assert "imported 0 runs" in again.stdout and "58 already in the store" in again.stdout

    listed = runner.invoke(app, ["runs", "list", "--db", db, "--limit", "5"])
    assert listed.exit_code == 0
    assert listed.stdout.count("who&when/hand-crafted") == 5
    assert "5 of 58 runs; older: --before" in listed.stderr
    data = json.loads(
        runner.invoke(app, ["runs", "list", "--db", db, "--json", "--limit", "100"]).stdout
    )
    assert data["total"] == 58 and len(data["runs"]) == 58

    with TraceStore(db) as store:
        run = store.list_runs(limit=1)[0]
        (gold,) = store.attributions(run.id)
    shown = runner.invoke(app, ["runs", "show", run.id, "--db", db])
    assert shown.exit_code == 0, shown.output
    assert f"run {run.id}" in shown.stdout
    assert f"★ blamed: {gold.agent} (human)" in shown.stdout
    blamed_line = next(i for i, line in enumerate(shown.stdout.splitlines()) if "★ blamed" in line)
    step_header = [
        line for line in shown.stdout.splitlines()[:blamed_line] if line[:5].strip().isdigit()
    ][-1]
    assert step_header.split()[0] == str(gold.step_index)  # the mark sits under the blamed step
    as_json = json.loads(runner.invoke(app, ["runs", "show", run.id, "--db", db, "--json"]).stdout)
    assert as_json["run"]["id"] == run.id and as_json["attributions"][0]["agent"] == gold.agent

    out = tmp_path / "all.jsonl"
    exported = runner.invoke(app, ["runs", "export", "--all", "--out", str(out), "--db", db])
    assert exported.exit_code == 0 and len(out.read_text().splitlines()) == 58
    otel = runner.invoke(
        app,
        [
            "runs",
            "export",
            run.id,
            "--format",
            "otel",
            "--out",
            str(tmp_path / "s.json"),
            "--db",
            db,
        ],
    )
    assert otel.exit_code == 0 and "resourceSpans" in (tmp_path / "s.json").read_text()


def test_filters(tmp_path: Path, datasets: Path) -> None:
    db = str(tmp_path / "f.db")
    runner.invoke(app, ["runs", "import", "mad", str(datasets / "mast"), "--db", db])
    result = runner.invoke(app, ["runs", "list", "--db", db, "--mode", "FM-1.3", "--json"])
    runs = json.loads(result.stdout)["runs"]
    assert runs and all("FM-1.3" in r["failure_modes"] for r in runs)
    assert (
        json.loads(
            runner.invoke(app, ["runs", "list", "--db", db, "--team", "AG2", "--json"]).stdout
        )["total"]
        == 2
    )
    empty = runner.invoke(app, ["runs", "list", "--db", db, "--search", "no such words"])
    assert empty.exit_code == 0 and "no runs matching those filters" in empty.stderr


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "b.db")
    bad = tmp_path / "bad.json"
    bad.write_text('{"question": "q", "history": [}')
    assert_one_line_error(
        runner.invoke(app, ["runs", "import", "whowhen", str(bad), "--db", db]),
        str(bad),
        "malformed JSON",
    )
    assert_one_line_error(
        runner.invoke(app, ["runs", "import", "csv", str(bad), "--db", db]),
        "unknown import format 'csv'",
    )
    assert_one_line_error(
        runner.invoke(app, ["runs", "list", "--db", str(tmp_path / "none.db")]), "no trace store at"
    )
    runner.invoke(app, ["runs", "import", "jsonl", str(bad), "--db", db])
    TraceStore(db).close()
    assert_one_line_error(runner.invoke(app, ["runs", "show", "ZZZ", "--db", db]), "no run 'ZZZ'")
    assert_one_line_error(
        runner.invoke(app, ["runs", "list", "--status", "done", "--db", db]),
        "unknown status 'done'",
    )
    assert_one_line_error(runner.invoke(app, ["runs", "export", "--db", db]), "pass --all")
    assert TraceStore(db).count_runs() == 0


def test_list_pages_in_any_order_by_the_cursor_it_prints(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    with TraceStore(db) as store:
        for i, steps in enumerate([3, 1, 4, 1, 5, 9, 2]):
            rid = store.start_run(team="t", task=f"task {i}")
            for k in range(steps):
                store.append_step(rid, agent="a", content=f"{k}")
            store.finish_run(rid, status="failed")
    seen: list[int] = []
    cursor: list[str] = []
    while True:
        result = runner.invoke(
            app, ["runs", "list", "--sort", "steps", "--limit", "3", "--json", "--db", db, *cursor]
        )
        assert result.exit_code == 0, result.output
        page = json.loads(result.stdout)
        seen += [r["step_count"] for r in page["runs"]]
        if page["next"] is None:
            break
        cursor = ["--cursor", page["next"]]
    assert seen == [9, 5, 4, 3, 2, 1, 1]  # every run once, largest first, across pages
    text = runner.invoke(
        app, ["runs", "list", "--sort", "steps", "--asc", "--limit", "2", "--db", db]
    )
    assert text.exit_code == 0 and "2 of 7 runs; next page: --cursor " in text.stderr
    assert_one_line_error(
        runner.invoke(app, ["runs", "list", "--sort", "step", "--db", db]),
        "unknown order 'step'",
        "steps",
    )
    assert_one_line_error(
        runner.invoke(app, ["runs", "list", "--sort", "cost", "--cursor", cursor[1], "--db", db]),
        "cursor",
    )


def test_show_a_step_with_the_messages_its_model_was_sent(tmp_path: Path) -> None:
    from mascope import Agent, Team
    from mascope.models import ScriptedModel

    db = tmp_path / "s.db"
    model = ScriptedModel(["ANSWER: 5"])
    agent = Agent("solver", role="[bold]careful[/bold] solver", goal="add exactly", model=model)
    rid = Team("math", [agent], store=db).run("What is 2 + 3?").run_id

    listing = runner.invoke(app, ["runs", "show", rid, "--db", str(db)])
    assert listing.exit_code == 0 and f"mascope runs show {rid} --step 0" in listing.stderr

    shown = runner.invoke(app, ["runs", "show", rid[:12], "--step", "0", "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert "ANSWER: 5" in out and "input: 2 messages sent to the model" in out
    system_at, user_at = out.index("[system]"), out.index("[user]")
    assert system_at < user_at
    assert "[bold]careful[/bold] solver" in out[system_at:user_at]  # untrusted text, not markup
    assert "Task: What is 2 + 3?" in out[user_at:]

    data = json.loads(
        runner.invoke(app, ["runs", "show", rid, "--step", "0", "--json", "--db", str(db)]).stdout
    )
    assert data["index"] == 0 and data["content"] == "ANSWER: 5"
    assert [m["role"] for m in data["inputs"]] == ["system", "user"]
    assert data["inputs"][0]["content"] == model.calls[0].messages[0].content

    assert_one_line_error(
        runner.invoke(app, ["runs", "show", rid, "--step", "7", "--db", str(db)]),
        f"run {rid} has no step 7; its steps are 0..0",
    )


def test_terminal_escapes_inside_a_trace_are_shown_not_sent(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    clear, title = "\x1b[2J", "\x1b]0;pwned\x07"
    with TraceStore(db) as store:
        rid = store.start_run(team=f"team{clear}", task=f"task{title}")
        store.append_step(
            rid, agent=f"coder{clear}", content=f"hi{clear}\x9b31m", error=f"e{title}"
        )
        store.finish_run(rid, status="failed", final_answer=f"done{clear}")
    for args in (["runs", "show", rid], ["runs", "show", rid, "--step", "0"], ["runs", "list"]):
        result = runner.invoke(app, [*args, "--db", str(db)])
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x9b" not in result.output, repr(result.output)
        assert "\u241b[2J" in result.output  # still visible, as a symbol
