"""The trace store: recorder cost, import throughput, list/show latency, bytes per step.

Baselines, measured side by side:
* recorder: a bare `sqlite3` INSERT + COMMIT per step with the same pragmas
  (WAL, synchronous=NORMAL), i.e. the least any durable per-step recorder pays;
* bulk import: a bare `sqlite3` executemany of the same rows in one transaction.

    .venv/bin/python benchmarks/bench_store.py [--runs 5] [--big /tmp/mascope-bench-1m.db] [--write docs/benchmarks.md]
    .venv/bin/python benchmarks/bench_store.py --postgres auto [--runs 5] [--write docs/benchmarks.md]

`--postgres URL` (or `auto`: a throwaway PostgreSQL 15 cluster started like the
tests start theirs) measures only the backends side by side instead: the
recorder's cost per step and the runtime's cost per step of a scripted
two-agent chat (checkpoints included), on SQLite and on PostgreSQL, beside a
bare psycopg INSERT + COMMIT per step.

The 10,000-run / 1,000,000-step store is generated once at --big (about a
minute) and reused by later runs of this script and by the TUI benchmark.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import machine, median, write_section

from mascope.traces import RunBase, RunBundle, StepBase, TraceStore, import_paths, new_id

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
WORDS = [
    "the",
    "agent",
    "checked",
    "the",
    "result",
    "and",
    "found",
    "that",
    "the",
    "value",
    "did",
    "not",
    "match",
    "so",
    "it",
    "asked",
    "the",
    "coder",
    "to",
    "try",
    "again",
    "with",
    "a",
    "smaller",
    "step",
]
AGENTS = ["planner", "coder", "reviewer", "tester", "manager"]
KINDS = ["message", "model_call", "tool_call", "tool_result", "verdict"]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def step_fields(rng: random.Random, i: int) -> dict[str, object]:
    kind = KINDS[i % len(KINDS)]
    return {
        "agent": AGENTS[i % len(AGENTS)],
        "kind": kind,
        "content": sentence(rng, rng.randint(20, 80)),
        "data": {"tool": "search", "arguments": {"q": sentence(rng, 3)}}
        if kind == "tool_call"
        else None,
        "model": "openai:gpt-4o-mini" if kind == "model_call" else None,
        "input_tokens": rng.randint(50, 900) if kind == "model_call" else None,
        "output_tokens": rng.randint(10, 300) if kind == "model_call" else None,
        "latency_s": round(rng.uniform(0.2, 3.0), 3) if kind == "model_call" else None,
    }


# -- recorder ------------------------------------------------------------------


def recorder_us_per_step(steps: int) -> float:
    rng = random.Random(1)
    fields = [step_fields(rng, i) for i in range(steps)]
    with tempfile.TemporaryDirectory() as tmp, TraceStore(Path(tmp) / "r.db") as store:
        rid = store.start_run(team="bench", task="recorder")
        started = time.perf_counter()
        for f in fields:
            store.append_step(rid, **f)  # type: ignore[arg-type]
        return (time.perf_counter() - started) / steps * 1e6


def sqlite_us_per_step(steps: int) -> float:
    rng = random.Random(1)
    fields = [step_fields(rng, i) for i in range(steps)]
    with tempfile.TemporaryDirectory() as tmp:
        con = sqlite3.connect(Path(tmp) / "b.db", isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute(
            "CREATE TABLE steps (id INTEGER PRIMARY KEY, run_id TEXT, idx INTEGER, agent TEXT, kind TEXT, content TEXT, "
            "data TEXT, model TEXT, input_tokens INTEGER, output_tokens INTEGER, latency_s REAL, created_at TEXT, UNIQUE(run_id, idx))"
        )
        started = time.perf_counter()
        for i, f in enumerate(fields):
            con.execute("BEGIN IMMEDIATE")
            con.execute(
                "INSERT INTO steps (run_id, idx, agent, kind, content, data, model, input_tokens, output_tokens, latency_s, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                ("R", i, f["agent"], f["kind"], f["content"], json.dumps(f["data"]), f["model"], f["input_tokens"],
                 f["output_tokens"], f["latency_s"], datetime.now(UTC).isoformat()),
            )  # fmt: skip
            con.execute("COMMIT")
        elapsed = time.perf_counter() - started
        con.close()
        return elapsed / steps * 1e6


# -- SQLite beside PostgreSQL -----------------------------------------------------------


def recorder_us_per_step_at(target: str, steps: int) -> float:
    """The recorder's cost per committed step in a store at `target` (a path or URL)."""
    rng = random.Random(1)
    fields = [step_fields(rng, i) for i in range(steps)]
    with TraceStore(target) as store:
        rid = store.start_run(team="bench", task="recorder")
        started = time.perf_counter()
        for f in fields:
            store.append_step(rid, **f)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        store.finish_run(rid, status="succeeded")
        return elapsed / steps * 1e6


def psycopg_us_per_step(url: str, steps: int) -> float:
    """The least a durable per-step recorder pays on PostgreSQL: one INSERT + COMMIT per step."""
    import psycopg

    rng = random.Random(1)
    fields = [step_fields(rng, i) for i in range(steps)]
    table = f"bench_steps_{new_id().lower()}"
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(
            f"CREATE TABLE {table} (id SERIAL PRIMARY KEY, run_id TEXT, idx INTEGER, agent TEXT, kind TEXT, content TEXT, "
            "data JSON, model TEXT, input_tokens INTEGER, output_tokens INTEGER, latency_s REAL, "
            "created_at TIMESTAMPTZ, UNIQUE(run_id, idx))"
        )
        sql = (
            f"INSERT INTO {table} (run_id, idx, agent, kind, content, data, model, input_tokens, output_tokens, "
            "latency_s, created_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
        )
        started = time.perf_counter()
        for i, f in enumerate(fields):
            with con.transaction():
                con.execute(
                    sql,
                    ("R", i, f["agent"], f["kind"], f["content"], json.dumps(f["data"]), f["model"],
                     f["input_tokens"], f["output_tokens"], f["latency_s"], datetime.now(UTC)),
                )  # fmt: skip
        elapsed = time.perf_counter() - started
        con.execute(f"DROP TABLE {table}")
        return elapsed / steps * 1e6


def runtime_ms_per_step(target: str, turns: int) -> float:
    """A two-agent round-robin chat of scripted models (as bench_runtime.py), recorded
    into the store at `target` with its checkpoints; ms per step."""
    import asyncio

    from mascope import Agent, Team
    from mascope.models import ScriptedModel

    reply = "I have looked at what was said and I add one more small thought. " * 3
    with TraceStore(target) as store:

        def team() -> Team:  # a fresh script each time: a scripted model's replies run out
            model = ScriptedModel([f"{reply} (turn {i})" for i in range(turns)])
            return Team(
                "bench",
                [Agent("alice", model=model), Agent("bob", model=model)],
                topology="group_chat",
                termination={"max_steps": turns},
                store=store,
            )

        asyncio.run(team().arun("warm up the checkpointer"))  # set-up (tables, connections) once
        runner = team()
        started = time.perf_counter()
        result = asyncio.run(runner.arun("discuss"))
        elapsed = time.perf_counter() - started
        assert result.step_count >= turns, result
        return elapsed / turns * 1e3


def compare_backends(url: str, n: int, write: Path | None) -> None:
    steps, turns = 1000, 100
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_rec = [recorder_us_per_step_at(str(Path(tmp) / f"r{i}.db"), steps) for i in range(n)]
        pg_rec = [recorder_us_per_step_at(url, steps) for _ in range(n)]
        raw_sqlite = [sqlite_us_per_step(steps) for _ in range(n)]
        raw_pg = [psycopg_us_per_step(url, steps) for _ in range(n)]
        sqlite_rt = [runtime_ms_per_step(str(Path(tmp) / f"t{i}.db"), turns) for i in range(n)]
        pg_rt = [runtime_ms_per_step(url, turns) for _ in range(n)]
    rec_s, rec_p, raw_s, raw_p = map(median, (sqlite_rec, pg_rec, raw_sqlite, raw_pg))
    rt_s, rt_p = median(sqlite_rt), median(pg_rt)
    print(
        f"recorder: SQLite {rec_s:.0f} us/step, PostgreSQL {rec_p:.0f} us/step ({rec_p / rec_s:.2f}x); "
        f"bare sqlite3 {raw_s:.0f}, bare psycopg {raw_p:.0f}; runtime: SQLite {rt_s:.2f} ms/step, "
        f"PostgreSQL {rt_p:.2f} ms/step ({rt_p / rt_s:.2f}x)"
    )
    if write:
        lines = [
            "## Trace store: SQLite beside PostgreSQL",
            "",
            f"Medians of {n} runs on {machine()}; PostgreSQL 15 on the same machine over TCP loopback "
            "(the throwaway cluster the tests use: `fsync=off`, `synchronous_commit=off`). "
            "Reproduce: `.venv/bin/python benchmarks/bench_store.py --postgres auto --write docs/benchmarks.md` "
            "(or `--postgres postgresql://USER@HOST/DB` for a server of your own).",
            "",
            "| measure | SQLite | PostgreSQL | PostgreSQL / SQLite |",
            "| --- | ---: | ---: | ---: |",
            f"| recorder: append one step in a live run (committed), µs | {rec_s:.0f} | {rec_p:.0f} | {rec_p / rec_s:.2f} |",
            f"| baseline: bare driver INSERT + COMMIT per step, µs | {raw_s:.0f} (sqlite3) | {raw_p:.0f} (psycopg) | {raw_p / raw_s:.2f} |",
            f"| recorder / its baseline | {rec_s / raw_s:.2f} | {rec_p / raw_p:.2f} | |",
            f"| runtime: a scripted two-agent chat of {turns} turns, ms per step (trace + checkpoints) | {rt_s:.2f} | {rt_p:.2f} | {rt_p / rt_s:.2f} |",
        ]
        write_section(write, "store-postgres", "\n".join(lines))


# -- bulk import ------------------------------------------------------------------


def make_jsonl(path: Path, runs: int, steps_per_run: int) -> int:
    rng = random.Random(2)
    with path.open("w") as fh:
        for r in range(runs):
            bundle = RunBundle(
                run=RunBase(
                    id=new_id(), team="bench", task=f"task {r}", status="failed", source="jsonl"
                ),
                steps=[StepBase(index=i, **step_fields(rng, i)) for i in range(steps_per_run)],  # type: ignore[arg-type]
            )
            fh.write(json.dumps(bundle.to_json_dict()) + "\n")
    return runs * steps_per_run


def import_steps_per_s(jsonl: Path, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, TraceStore(Path(tmp) / "i.db") as store:
        started = time.perf_counter()
        import_paths(store, "jsonl", [jsonl])
        return steps / (time.perf_counter() - started)


def sqlite_bulk_steps_per_s(jsonl: Path, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        con = sqlite3.connect(Path(tmp) / "b.db", isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute(
            "CREATE TABLE steps (id INTEGER PRIMARY KEY, run_id TEXT, idx INTEGER, agent TEXT, kind TEXT, content TEXT, data TEXT, UNIQUE(run_id, idx))"
        )
        started = time.perf_counter()
        con.execute("BEGIN")
        for line in jsonl.open():
            b = json.loads(line)
            con.executemany(
                "INSERT INTO steps (run_id, idx, agent, kind, content, data) VALUES (?,?,?,?,?,?)",
                [
                    (
                        b["run"]["id"],
                        s["index"],
                        s["agent"],
                        s["kind"],
                        s["content"],
                        json.dumps(s["data"]),
                    )
                    for s in b["steps"]
                ],
            )
        con.execute("COMMIT")
        elapsed = time.perf_counter() - started
        con.close()
        return steps / elapsed


def whowhen_import_s() -> float:
    with tempfile.TemporaryDirectory() as tmp, TraceStore(Path(tmp) / "w.db") as store:
        started = time.perf_counter()
        report = import_paths(store, "whowhen", [DATASETS / "who_and_when"])
        assert report.runs == 184
        return time.perf_counter() - started


# -- the big store ----------------------------------------------------------------


def build_big_store(path: Path, runs: int = 10_000, steps: int = 1_000_000) -> None:
    """10,000 runs, 1,000,000 steps: one run of 10,000 steps, the rest ~99 each."""
    tmp = path.with_suffix(".building")
    for p in tmp.parent.glob(tmp.name + "*"):
        p.unlink()
    rng = random.Random(3)
    sizes = [10_000] + [(steps - 10_000) // (runs - 1)] * (runs - 1)
    sizes[-1] += steps - sum(sizes)
    statuses = ["succeeded", "failed", "failed", "error"]
    teams = ["coders", "researchers", "math", "support"]
    with TraceStore(tmp) as store:
        batch: list[RunBundle] = []
        for r, n in enumerate(sizes):
            batch.append(
                RunBundle(
                    run=RunBase(
                        id=new_id(),
                        team=teams[r % 4],
                        task=f"{sentence(rng, 8)} #{r}",
                        status=statuses[r % 4],
                        source="native",
                        input_tokens=n * 40,
                        output_tokens=n * 10,
                        cost_usd=n * 0.0001,
                        metadata_={"n": r},
                    ),
                    steps=[StepBase(index=i, **step_fields(rng, i)) for i in range(n)],  # type: ignore[arg-type]
                    annotations=[
                        {
                            "id": new_id(),
                            "mode": f"FM-{1 + r % 3}.{1 + r % 5}",
                            "present": True,
                            "annotator": "rule:bench",
                            "evidence_steps": [0],
                        }
                    ]
                    if r % 3 == 0
                    else [],
                )
            )
            if len(batch) == 200:
                store.write_bundles(batch)
                batch.clear()
        if batch:
            store.write_bundles(batch)
        store.checkpoint_wal()
    tmp.rename(path)


def timed(fn: object, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - started)
    return out


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "mascope.cli", *args], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--big", type=Path, default=Path(tempfile.gettempdir()) / "mascope-bench-1m.db"
    )
    parser.add_argument("--write", type=Path)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="Compare SQLite with PostgreSQL at URL (`auto`: start a throwaway cluster) instead.",
    )
    args = parser.parse_args()
    n = args.runs
    if args.postgres:
        if args.postgres != "auto":
            compare_backends(args.postgres, n, args.write)
            return
        sys.path.insert(0, str(ROOT))
        from tests import postgres  # the tests' throwaway cluster

        bin_dir = postgres.find_bin()
        if bin_dir is None:
            sys.exit(
                "PostgreSQL's initdb/pg_ctl not found; set MASCOPE_PG_BIN or pass --postgres URL"
            )
        server = postgres.start(bin_dir)
        try:
            compare_backends(server.database(), n, args.write)
        finally:
            server.stop()
        return

    rec = [recorder_us_per_step(2000) for _ in range(n)]
    raw = [sqlite_us_per_step(2000) for _ in range(n)]
    print(f"recorder: mascope {median(rec):.1f} us/step, sqlite3 {median(raw):.1f} us/step")

    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "bulk.jsonl"
        total = make_jsonl(jsonl, 100, 1000)
        imp = [import_steps_per_s(jsonl, total) for _ in range(n)]
        bulk = [sqlite_bulk_steps_per_s(jsonl, total) for _ in range(n)]
    print(f"import: mascope {median(imp):,.0f} steps/s, sqlite3 {median(bulk):,.0f} steps/s")

    ww = [whowhen_import_s() for _ in range(n)]
    print(f"who&when import: {median(ww):.2f} s")

    if not args.big.exists():
        started = time.perf_counter()
        build_big_store(args.big)
        print(f"built {args.big} in {time.perf_counter() - started:.0f} s")
    with TraceStore(args.big, create=False) as store:
        total_steps = (
            store.engine.read.connect().exec_driver_sql("SELECT count(*) FROM steps").scalar()
        )
        total_runs = store.count_runs()
        big_run = (
            store.engine.read.connect()
            .exec_driver_sql("SELECT id FROM runs WHERE step_count = 10000 LIMIT 1")
            .scalar()
        )
        small_run = store.list_runs(limit=1)[0].id

        def list_page() -> None:
            runs = store.list_runs(limit=20)
            store.modes_by_run([r.id for r in runs])
            store.count_runs()

        def list_filtered() -> None:
            runs = store.list_runs(limit=20, status="failed", mode="FM-2.3")
            store.modes_by_run([r.id for r in runs])
            store.count_runs(status="failed", mode="FM-2.3")

        lib_list = timed(list_page, n)
        lib_filtered = timed(list_filtered, n)
        lib_show_small = timed(
            lambda: (store.get_run(small_run), list(store.iter_steps(small_run))), n
        )
        lib_show_big = timed(lambda: (store.get_run(big_run), list(store.iter_steps(big_run))), n)
        lib_window = timed(lambda: store.steps(big_run, offset=5000, limit=100), n)
    size = sum(p.stat().st_size for p in args.big.parent.glob(args.big.name + "*"))
    cli_list = timed(lambda: cli("runs", "list", "--db", str(args.big)), n)
    cli_show = timed(lambda: cli("runs", "show", small_run, "--db", str(args.big)), n)
    cli_show_big = timed(
        lambda: cli("runs", "show", big_run, "--db", str(args.big)), max(3, n // 2)
    )
    cli_version = timed(lambda: cli("--version"), n)
    print(
        f"{total_runs} runs / {total_steps} steps, {size / total_steps:.0f} bytes/step; list {median(lib_list) * 1e3:.1f} ms, "
        f"show small {median(lib_show_small) * 1e3:.1f} ms, big {median(lib_show_big) * 1e3:.0f} ms; "
        f"CLI list {median(cli_list):.2f} s, show {median(cli_show):.2f} s, show big {median(cli_show_big):.2f} s, bare CLI {median(cli_version):.2f} s"
    )

    if args.write:
        lines = [
            "## Trace store",
            "",
            f"Medians of {n} runs on {machine()}. Reproduce: `.venv/bin/python benchmarks/bench_store.py --write docs/benchmarks.md`",
            "(the 10,000-run / 1,000,000-step store is generated once at `/tmp/mascope-bench-1m.db`).",
            "",
            "| measure | mascope | baseline | ratio |",
            "| --- | ---: | ---: | ---: |",
            f"| recorder: append one step in a live run (committed), µs | {median(rec):.0f} | {median(raw):.0f} (sqlite3 INSERT+COMMIT) | {median(rec) / median(raw):.2f} |",
            f"| bulk import (mascope JSONL, 100 runs x 1,000 steps), steps/s | {median(imp):,.0f} | {median(bulk):,.0f} (sqlite3 executemany) | {median(imp) / median(bulk):.2f} |",
            f"| import all of Who&When (184 files, 4,092 steps), s | {median(ww):.2f} | | |",
            "",
            f"On the generated store ({total_runs:,} runs, {total_steps:,} steps, {size / 1e6:,.0f} MB):",
            "",
            "| measure | median |",
            "| --- | ---: |",
            f"| database bytes per step (file size / steps, WAL folded in) | {size / total_steps:.0f} |",
            f"| `TraceStore.list_runs` first page of 20 + failure modes + total count | {median(lib_list) * 1e3:.1f} ms |",
            f"| the same filtered by status and failure mode | {median(lib_filtered) * 1e3:.1f} ms |",
            f"| all steps of a 100-step run | {median(lib_show_small) * 1e3:.1f} ms |",
            f"| all steps of a 10,000-step run | {median(lib_show_big) * 1e3:.0f} ms |",
            f"| a 100-step window in the middle of the 10,000-step run | {median(lib_window) * 1e3:.1f} ms |",
            f"| `mascope runs list` (whole process) | {median(cli_list):.2f} s |",
            f"| `mascope runs show` of a 100-step run (whole process) | {median(cli_show):.2f} s |",
            f"| `mascope runs show` of the 10,000-step run (whole process, rendered) | {median(cli_show_big):.2f} s |",
            f"| `mascope --version` (Python start-up and imports, for reference) | {median(cli_version):.2f} s |",
        ]
        write_section(args.write, "store", "\n".join(lines))


if __name__ == "__main__":
    if "--clean" in sys.argv:
        shutil.rmtree(Path(tempfile.gettempdir()) / "mascope-bench-1m.db", ignore_errors=True)
    main()
