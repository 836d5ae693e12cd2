"""Input recording: store bytes per step of a group chat at 20 and 200 turns.

Three stores hold the same run, a round-robin chat of two scripted-model agents
whose prompts carry the conversation (the default 6,000-character window):
* without inputs: the steps alone (what mascope stored before inputs were recorded);
* inline: each step also holding its whole input messages as JSON (the obvious design);
* parts: mascope's design, each distinct paragraph stored once (`blobs`).

    .venv/bin/python benchmarks/bench_inputs.py [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import machine, median, write_section

from mascope import Agent, Team
from mascope.models import ScriptedModel
from mascope.traces import TraceStore

WORDS = "the agent checked result and found that value did not match so it asked coder to try again with smaller step".split()  # noqa: SIM905


WHOLE = 10**8


def reply(rng: random.Random, i: int) -> str:
    sentences = [" ".join(rng.choices(WORDS, k=rng.randint(8, 16))).capitalize() + "." for _ in range(rng.randint(2, 5))]  # fmt: skip
    return f"Turn {i}. " + " ".join(sentences)


def size(db: Path) -> int:
    """Bytes the database needs: used pages, WAL folded in and free pages dropped."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("VACUUM")
    pages, page = con.execute("PRAGMA page_count").fetchone()[0], con.execute("PRAGMA page_size").fetchone()[0]  # fmt: skip
    con.close()
    return int(pages * page)


def measure(turns: int, window: int, tmp: Path) -> dict[str, float]:
    rng = random.Random(turns)
    model = ScriptedModel([reply(rng, i) for i in range(turns)])
    agents = [Agent(n, role=f"{n}, who argues its case", goal="settle the question", model=model) for n in ("ann", "bob")]  # fmt: skip
    name = f"{turns}-{window}"
    parts_db = tmp / f"parts{name}.db"
    team = Team("debate", agents, topology="group_chat", termination={"max_rounds": turns // 2}, store=parts_db, context_chars=window)  # fmt: skip
    rid = team.run("Is the value right?").run_id
    bare_db, inline_db = tmp / f"bare{name}.db", tmp / f"inline{name}.db"
    with TraceStore(parts_db) as src, TraceStore(bare_db) as bare, TraceStore(inline_db) as inline:
        steps = src.steps(rid)
        for target, with_inputs in ((bare, False), (inline, True)):
            other = target.start_run(team="debate", task="Is the value right?", run_id=rid)
            for s in steps:
                data = dict(s.data or {})
                if with_inputs and s.inputs:
                    data["inputs"] = [m.model_dump() for m in src.step_inputs(rid, s.index)]
                target.append_step(other, agent=s.agent, kind=s.kind, content=s.content, data=data,
                                   model=s.model, input_tokens=s.input_tokens, output_tokens=s.output_tokens)  # fmt: skip
            target.finish_run(other, status="failed")
        last = [m.model_dump() for m in src.step_inputs(rid, steps[-1].index)]
    n = len(steps)
    sizes = {"bare": size(bare_db) / n, "inline": size(inline_db) / n, "parts": size(parts_db) / n}
    con = sqlite3.connect(parts_db)
    blobs = con.execute("SELECT COUNT(*) FROM blobs").fetchone()[0]
    con.close()
    sent = sum(len(m.content or "") for c in model.calls for m in c.messages)
    # Recorder cost of a step with this run's last input, against one without.
    with TraceStore(tmp / f"timing{name}.db") as timing_store:
        timing = timing_store.start_run(team="timing")
        timing_store.append_step(timing, agent="a", inputs=last)  # its parts are stored now
        with_in, without = [], []
        for _ in range(200):
            t0 = time.perf_counter()
            timing_store.append_step(timing, agent="a", content="x", inputs=last)
            t1 = time.perf_counter()
            timing_store.append_step(timing, agent="a", content="x")
            without.append(time.perf_counter() - t1)
            with_in.append(t1 - t0)
    return {
        "steps": n,
        **sizes,
        "blobs": blobs,
        "sent": sent / n,
        "us_with": median(with_in) * 1e6,
        "us_without": median(without) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", type=Path, help="update this markdown file's section")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {
            (t, w): measure(t, w, Path(tmp)) for t, w in ((20, 6000), (200, 6000), (200, WHOLE))
        }
    lines = [
        "## Input recording",
        "",
        f"On {machine()}. Reproduce: `.venv/bin/python benchmarks/bench_inputs.py --write docs/benchmarks.md`",
        "",
        "A round-robin chat of two scripted-model agents, each turn's prompt carrying the conversation "
        "so far (the default 6,000-character window, or all of it). Database bytes per step (used pages, "
        "WAL folded in; in brackets, what the inputs add):",
        "",
        "| turns | context | steps only (before) | with inputs inline as JSON | with inputs as shared parts (mascope) | parts stored | prompt characters sent per step |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (turns, window), r in rows.items():
        inline, parts = r["inline"] - r["bare"], r["parts"] - r["bare"]
        lines.append(
            f"| {turns} | {'all' if window == WHOLE else f'{window:,} chars'} | {r['bare']:,.0f} | {r['inline']:,.0f} (+{inline:,.0f}) | {r['parts']:,.0f} (+{parts:,.0f}) "
            f"| {r['blobs']:,} | {r['sent']:,.0f} |"
        )
    r = rows[(200, 6000)]
    lines += [
        "",
        f"Recording a step with a 200-turn chat's input costs {r['us_with']:.0f} µs against {r['us_without']:.0f} µs "
        "without (median of 200; its parts are already stored, so only the references are written).",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(args.write, "inputs", body)


if __name__ == "__main__":
    main()
