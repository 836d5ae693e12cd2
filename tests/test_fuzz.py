"""Fuzzing what users hand to mascope: team files, import files and CLI arguments.

Every malformed input must give one `error:` line on stderr, exit code 2, no
traceback, and leave nothing behind: no new file, and an existing store byte
for byte as it was. Example counts are bounded so the module runs in well under
a minute on two cores. `test_zz_report` prints how many inputs were tried and
how many got a clean error (the "Reliability" figure in docs/benchmarks.md).
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mascope.cli import app
from mascope.traces import TraceStore
from tests.reliability import tally

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
TALLY: Counter[str] = Counter()
FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same inputs every run: CI stays reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TEAM: dict[str, Any] = {
    "name": "t",
    "model": "scripted:none.yaml",
    "agents": [
        {"name": "a", "function": "tests.graphs.helpers:counter"},
        {"name": "b", "function": "tests.graphs.helpers:counter"},
    ],
    "verifiers": {"v": {"kind": "answer_match", "expected": "5"}},
    "topology": {"kind": "pipeline", "stages": ["a", {"agent": "b", "verifier": "v"}]},
    "termination": {"max_steps": 10},
}

BUNDLE: dict[str, Any] = {
    "format": "mascope.run/1",
    "run": {
        "id": "01JABCDEFGHJKMNPQRSTVWXYZ0",
        "team": "t",
        "task": "x",
        "status": "failed",
        "metadata": {},
    },
    "steps": [{"index": 0, "agent": "a", "content": "hi"}],
    "annotations": [],
    "attributions": [],
}

WHOWHEN: dict[str, Any] = {
    "question": "q",
    "ground_truth": "1",
    "history": [
        {"content": "hi", "role": "user"},
        {"content": "1", "role": "assistant", "name": "a"},
    ],
    "mistake_agent": "a",
    "mistake_step": "1",
    "mistake_reason": "r",
}


# -- checking one attempt ----------------------------------------------------------


_TEMPLATE: list[Path] = []


def _template_store() -> Path:
    """One store with one run, made once and copied for each example (fast)."""
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="mascope-fuzz-template-"))
        atexit.register(shutil.rmtree, folder, True)
        with TraceStore(folder / "s.db") as store:
            rid = store.start_run(team="keep", task="keep")
            store.finish_run(rid, status="failed")
        _TEMPLATE.append(folder / "s.db")
    return _TEMPLATE[0]


@contextmanager
def workdir() -> Iterator[Path]:
    """A fresh folder holding a store with one run, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="mascope-fuzz-"))
    try:
        shutil.copyfile(_template_store(), folder / "s.db")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def assert_clean_error(kind: str, folder: Path, args: list[str]) -> None:
    before = snapshot(folder)
    result = runner.invoke(app, args)
    TALLY[f"{kind}:tried"] += 1
    stderr = result.stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2, (args, result.exit_code, stderr, repr(result.exception))
    assert len(errors) == 1 and len(stderr.strip().splitlines()) == 1, (args, stderr)
    assert "Traceback" not in result.output, (args, result.output)
    assert snapshot(folder) == before, (args, "files changed")
    TALLY[f"{kind}:clean"] += 1


# -- team files ----------------------------------------------------------------------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)

words = st.text(alphabet="abcxyz -!", min_size=1, max_size=12)
"""Text that no parser reads as a number."""

# (path into TEAM, values that are always wrong there)
WRONG: list[tuple[tuple[Any, ...], st.SearchStrategy[Any]]] = [
    (
        ("name",),
        st.one_of(
            st.lists(st.text(), min_size=1), st.dictionaries(st.text(), st.text(), min_size=1)
        ),
    ),
    (
        ("agents",),
        st.one_of(st.just([]), st.text(), st.integers(), st.dictionaries(st.text(), st.text())),
    ),
    (
        ("agents", 0, "name"),
        st.one_of(st.integers(), st.just(""), st.just("bad name!"), st.just("../x")),
    ),
    (("agents", 0, "max_tool_calls"), st.one_of(words, st.lists(st.integers()))),
    (
        ("agents", 0, "output_schema"),
        st.one_of(st.text(min_size=1), st.integers(), st.lists(st.integers())),
    ),
    (("topology",), st.one_of(st.text(), st.integers(), st.lists(st.text()))),
    (
        ("topology", "kind"),
        st.text(max_size=12).filter(lambda s: s not in ("pipeline", "group_chat", "graph")),
    ),
    (
        ("topology", "stages"),
        st.one_of(
            st.just([]),
            st.integers(),
            st.lists(
                st.text(min_size=1, max_size=8).filter(lambda s: s not in ("a", "b")), min_size=1
            ),
        ),
    ),
    (
        ("termination", "max_steps"),
        st.one_of(
            st.integers(max_value=0),
            words,
            st.floats(allow_nan=True).filter(lambda f: not (f == f and f.is_integer() and f >= 1)),
        ),
    ),
    (
        ("verifiers", "v", "kind"),
        st.text(max_size=12).filter(
            lambda s: (
                s
                not in ("answer_match", "json_schema", "code_tests", "rubric", "python", "ensemble")
            )
        ),
    ),
    (("context_chars",), st.one_of(st.integers(max_value=499), words)),
]


def set_path(data: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def deep(depth: int, leaf: Any = 1) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


@FUZZ
@given(where=st.integers(0, len(WRONG) - 1), data=st.data())
def test_fuzz_team_wrong_values(where: int, data: st.DataObject) -> None:
    path, values = WRONG[where]
    team = copy.deepcopy(TEAM)
    set_path(team, path, data.draw(values))
    with workdir() as folder:
        (folder / "team.yaml").write_text(yaml.safe_dump(team, allow_unicode=True))
        assert_clean_error(
            "team",
            folder,
            ["run", str(folder / "team.yaml"), "--task", "x", "--db", str(folder / "s.db")],
        )


@FUZZ
@given(
    where=st.sampled_from([(), ("agents", 0), ("topology",), ("termination",), ("verifiers", "v")]),
    key=st.text(min_size=1, max_size=10).filter(lambda k: k.isidentifier()),
    value=junk,
)
def test_fuzz_team_unknown_keys(where: tuple[Any, ...], key: str, value: Any) -> None:
    team = copy.deepcopy(TEAM)
    target: Any = team
    for k in where:
        target = target[k]
    if (
        key in target
        or key in {"from"}
        or (where == ("verifiers", "v") and key in VERIFIER_FIELDS)
        or (where == ("agents", 0) and key in AGENT_FIELDS)
        or (where == () and key in TEAM_FIELDS)
        or (where == ("termination",) and key in TERMINATION_FIELDS)
        or (where == ("topology",) and key in ("stages", "kind"))
    ):
        key = f"{key}_unknown_key"
    target[key] = value
    with workdir() as folder:
        (folder / "team.yaml").write_text(yaml.safe_dump(team, allow_unicode=True))
        assert_clean_error(
            "team",
            folder,
            ["run", str(folder / "team.yaml"), "--task", "x", "--db", str(folder / "s.db")],
        )


VERIFIER_FIELDS = {
    "expected",
    "mode",
    "extract",
    "marker",
    "tolerance",
    "schema",
    "tests",
    "tests_from",
    "code_from",
    "timeout_s",
    "memory_mb",
    "rubric",
    "model",
    "function",
    "members",
    "combine",
    "threshold",
    "kind",
}
AGENT_FIELDS = {
    "name",
    "role",
    "goal",
    "instructions",
    "constraints",
    "tools",
    "output_schema",
    "model",
    "temperature",
    "max_tokens",
    "function",
    "max_tool_calls",
}
TEAM_FIELDS = {
    "name",
    "description",
    "model",
    "agents",
    "tools",
    "verifiers",
    "topology",
    "termination",
    "context_chars",
}
TERMINATION_FIELDS = {
    "max_steps",
    "max_rounds",
    "stop_phrase",
    "final_answer_tool",
    "verifier_pass",
    "budget",
}


@FUZZ
@given(text=st.text(max_size=200))
def test_fuzz_team_garbage_text(text: str) -> None:
    with workdir() as folder:
        (folder / "team.yaml").write_text(text)
        assert_clean_error(
            "team",
            folder,
            ["run", str(folder / "team.yaml"), "--task", "x", "--db", str(folder / "s.db")],
        )


@settings(FUZZ, max_examples=15)
@given(
    kind=st.sampled_from(["deep-list", "deep-map", "laughs", "recursive", "many-aliases", "cut"]),
    depth=st.integers(65, 3000),
    where=st.sampled_from(["output_schema", "name", "agents", "topology"]),
)
def test_fuzz_team_adversarial_yaml(kind: str, depth: int, where: str) -> None:
    good = yaml.safe_dump(TEAM)
    if kind == "deep-list":
        text = good + f"x_{where}: " + "[" * depth + "]" * depth + "\n"
    elif kind == "deep-map":
        text = good + f"x_{where}: " + "{a: " * depth + "1" + "}" * depth + "\n"
    elif kind == "laughs":
        lines = ['x0: &l0 ["lol"]'] + [
            f"x{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)
        ]
        text = good + "\n".join(lines) + "\n"
    elif kind == "recursive":
        text = good + f"x_{where}: &r [1, *r]\n"
    elif kind == "many-aliases":
        text = good + "x_a: &a v\n" + "".join(f"x_{i}: *a\n" for i in range(depth % 200 + 101))
    else:
        text = good[: depth % len(good)] + "\n  - {unclosed: [\n"
    with workdir() as folder:
        (folder / "team.yaml").write_text(text)
        assert_clean_error(
            "team",
            folder,
            ["run", str(folder / "team.yaml"), "--task", "x", "--db", str(folder / "s.db")],
        )


# -- import files ---------------------------------------------------------------------

bad_ids = st.one_of(
    st.just("../../etc/passwd"),
    st.just(""),
    st.text(min_size=1, max_size=30).filter(
        lambda s: (
            not (
                s[:1].isascii()
                and s[:1].isalnum()
                and all(c.isascii() and (c.isalnum() or c in "_-") for c in s)
            )
        )
    ),
    st.text(alphabet="abc", min_size=65, max_size=80),
    st.integers(),
)
bad_ints = st.one_of(
    st.integers(min_value=2**63, max_value=10**40),
    st.integers(min_value=-(10**40), max_value=-(2**63) - 1),
    st.text(alphabet="abcxyz -!", min_size=1, max_size=5),
)

JSONL_WRONG: list[tuple[tuple[Any, ...], st.SearchStrategy[Any]]] = [
    (("run", "id"), bad_ids),
    (("run", "parent_run_id"), bad_ids.filter(lambda v: v is not None)),
    (
        ("run", "status"),
        st.text(max_size=10).filter(
            lambda s: s not in ("running", "succeeded", "failed", "error", "interrupted", "unknown")
        ),
    ),
    (("run", "fork_step"), st.one_of(bad_ints, st.integers(max_value=-1))),
    (("run", "input_tokens"), bad_ints),
    (("steps",), st.one_of(st.text(), st.integers(), st.just([{"index": 1, "agent": "a"}]))),
    (("steps", 0, "index"), st.one_of(bad_ints, st.integers(min_value=1))),
    (("steps", 0, "content"), st.one_of(st.integers(), st.lists(st.text(), min_size=1))),
    (("run",), st.one_of(st.text(), st.integers(), st.lists(st.integers()))),
    (("format",), st.text(max_size=12).filter(lambda s: s != "mascope.run/1")),
]


def import_args(folder: Path, fmt: str, file: Path) -> list[str]:
    return ["runs", "import", fmt, str(file), "--db", str(folder / "s.db")]


@FUZZ
@given(where=st.integers(0, len(JSONL_WRONG) - 1), data=st.data())
def test_fuzz_jsonl_wrong_fields(where: int, data: st.DataObject) -> None:
    path, values = JSONL_WRONG[where]
    record = copy.deepcopy(BUNDLE)
    set_path(record, path, data.draw(values))
    with workdir() as folder:
        file = folder / "in.jsonl"
        file.write_text(
            json.dumps(BUNDLE | {"run": BUNDLE["run"] | {"id": "01JOTHERGOODRUN0000000000"}})
            + "\n"
            + json.dumps(record)
            + "\n"
        )
        assert_clean_error("import", folder, import_args(folder, "jsonl", file))


@FUZZ
@given(
    fmt=st.sampled_from(["jsonl", "whowhen", "mad"]),
    cut=st.integers(0, 10_000),
    corruption=st.sampled_from(["truncate", "deep", "garbage", "not-utf8", "empty", "scalar"]),
    depth=st.integers(201, 20_000),
)
def test_fuzz_import_corrupted_files(fmt: str, cut: int, corruption: str, depth: int) -> None:
    text = (
        json.dumps(BUNDLE)
        if fmt == "jsonl"
        else json.dumps(WHOWHEN if fmt == "whowhen" else [{"trace": "a: hi", "annotations": []}])
    )
    raw: bytes
    if corruption == "truncate":
        raw = text[: max(1, cut % (len(text) - 1))].encode()
    elif corruption == "deep":
        raw = ("[" * depth + "]" * depth).encode()
    elif corruption == "garbage":
        raw = (text[: cut % len(text)] + "\x00}{]" + text[cut % len(text) :]).encode()
    elif corruption == "not-utf8":
        raw = b"\xff\xfe" + text.encode()[:50] + b"\xc3"
    elif corruption == "empty":
        raw = b"\n\n"
    else:
        raw = json.dumps(cut).encode()
    with workdir() as folder:
        file = folder / ("in.jsonl" if fmt == "jsonl" else "in.json")
        file.write_bytes(raw)
        assert_clean_error("import", folder, import_args(folder, fmt, file))


@FUZZ
@given(
    field=st.sampled_from(
        ["question", "history", "mistake_agent", "mistake_step", "mistake_reason", "ground_truth"]
    ),
    value=st.one_of(
        st.none(),
        st.lists(st.integers(), min_size=1),
        st.dictionaries(st.text(), st.integers(), min_size=1),
        st.just(deep(300)),
    ),
)
def test_fuzz_whowhen_wrong_fields(field: str, value: Any) -> None:
    record = copy.deepcopy(WHOWHEN)
    record[field] = value
    with workdir() as folder:
        file = folder / "ww.json"
        file.write_text(json.dumps(record))
        assert_clean_error("import", folder, import_args(folder, "whowhen", file))


@FUZZ
@given(
    value=st.one_of(
        st.integers(),
        st.text(),
        st.lists(st.integers(), min_size=1),
        st.just([{"annotations": []}]),
        st.just([{"trace": 5}]),
        st.just([{"trace": "x", "annotations": [{"failure mode": 3}]}]),
        st.just([{"trace": "x", "annotations": [{"failure mode": "FM", "annotator1": "yes"}]}]),
        st.just(deep(500, {"trace": "x"})),
    )
)
def test_fuzz_mad_wrong_records(value: Any) -> None:
    with workdir() as folder:
        file = folder / "mad.json"
        file.write_text(json.dumps(value))
        assert_clean_error("import", folder, import_args(folder, "mad", file))


# -- CLI arguments --------------------------------------------------------------------

bad_numbers = st.one_of(
    st.integers(max_value=-1).map(str),
    st.integers(min_value=10**10, max_value=10**40).map(str),
    st.sampled_from(["", "abc", "1.5", "1e999", "nan", "inf", "-0x1", "1_000_000_000_000"]),
)
bad_urls = st.sampled_from(
    [
        "foo://bar",
        "sqlite:////no/such/folder/x.db",
        "postgresql://",
        "://",
        "mysql+nothing://x/y",
        "/no/such/folder/x.db",
        "sqlite://:memory:x",
    ]
)


@FUZZ
@given(
    case=st.sampled_from(
        [
            ("runs", "list", "--limit"),
            ("runs", "show", "RUN", "--offset"),
            ("runs", "show", "RUN", "--limit"),
            ("runs", "fork", "RUN", "-c", "x", "--step"),
            ("judge", "RUN", "--concurrency"),
            ("attribute", "RUN", "--max-replays"),
            ("eval", "whowhen", "FOLDER", "--limit"),
        ]
    ),
    value=bad_numbers,
)
def test_fuzz_cli_numbers(case: tuple[str, ...], value: str) -> None:
    with workdir() as folder:
        args = [a.replace("FOLDER", str(folder)) for a in case]
        db = [] if case[0] == "eval" else ["--db", str(folder / "s.db")]
        assert_clean_error("cli", folder, [*args, value, *db])


@FUZZ
@given(
    command=st.sampled_from(
        [
            ["runs", "list"],
            ["runs", "show", "01J"],
            ["runs", "export", "--all", "--out", "OUT"],
            ["judge", "--all"],
            ["runs", "import", "jsonl", "FILE"],
            ["tui", "01J"],
        ]
    ),
    url=bad_urls,
)
def test_fuzz_cli_bad_store_urls(command: list[str], url: str) -> None:
    with workdir() as folder:
        (folder / "in.jsonl").write_text(json.dumps(BUNDLE) + "\n")
        args = [
            a.replace("OUT", str(folder / "o.jsonl")).replace("FILE", str(folder / "in.jsonl"))
            for a in command
        ]
        assert_clean_error("cli", folder, [*args, "--db", url])


@FUZZ
@given(
    args=st.sampled_from(
        [
            ["run", "MISSING", "--task", "x"],
            ["run", "FOLDER", "--task", "x"],
            ["runs", "import", "jsonl", "MISSING"],
            ["runs", "import", "whowhen", "FOLDER"],
            ["runs", "import", "nope", "FILE"],
            ["runs", "export", "--all", "--out", "FOLDER"],
            ["runs", "export", "--all", "--out", "MISSING/x/y.jsonl"],
            ["runs", "export", "--all", "--format", "xml", "--out", "OUT"],
            ["runs", "show", "NOSUCHRUN"],
            ["runs", "list", "--before", "garbage"],
            ["runs", "list", "--status", "weird"],
            ["chat", "hi", "--schema", "MISSING"],
            ["chat", "hi", "-m", "scripted:MISSING"],
            ["taxonomy", "show", "MISSING"],
        ]
    ),
    junk_name=st.text(alphabet="abcxyz_-", min_size=1, max_size=12),
)
def test_fuzz_cli_missing_things(args: list[str], junk_name: str) -> None:
    with workdir() as folder:
        (folder / "in.jsonl").write_text(json.dumps(BUNDLE) + "\n")
        (folder / "empty").mkdir()
        swap = {
            "MISSING": str(folder / f"missing-{junk_name}"),
            "FOLDER": str(folder / "empty"),
            "FILE": str(folder / "in.jsonl"),
            "OUT": str(folder / "o.jsonl"),
        }
        filled = [next((a.replace(k, v) for k, v in swap.items() if k in a), a) for a in args]
        needs_db = filled[0] in ("run", "runs")
        assert_clean_error(
            "cli", folder, [*filled, *(["--db", str(folder / "s.db")] if needs_db else [])]
        )


# -- a few real processes -------------------------------------------------------------


def test_real_processes_give_one_line(tmp_path: Path) -> None:
    team = tmp_path / "team.yaml"
    team.write_text("name: t\nagents: " + "[" * 5000 + "\n")
    deep_jsonl = tmp_path / "deep.jsonl"
    deep_jsonl.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    db = tmp_path / "s.db"
    cases = [
        ["run", str(team), "--task", "x", "--db", str(db)],
        ["runs", "import", "jsonl", str(deep_jsonl), "--db", str(db)],
        ["runs", "list", "--limit", "99999999999999999999", "--db", str(db)],
    ]
    for args in cases:
        done = subprocess.run(
            [sys.executable, "-m", "mascope.cli", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
        TALLY["process:tried"] += 1
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), (
            args,
            done.stderr,
        )
        assert sorted(p.name for p in tmp_path.iterdir()) == ["deep.jsonl", "team.yaml"], args
        TALLY["process:clean"] += 1


def test_zz_report() -> None:
    """Print the tally for docs/benchmarks.md (run with -s to see it)."""
    tried = sum(v for k, v in TALLY.items() if k.endswith(":tried"))
    clean = sum(v for k, v in TALLY.items() if k.endswith(":clean"))
    kinds = ", ".join(
        f"{k.split(':')[0]} {TALLY[k.split(':')[0] + ':clean']}/{v}"
        for k, v in sorted(TALLY.items())
        if k.endswith(":tried")
    )
    print(f"\nfuzz: {clean} of {tried} malformed inputs got a clean one-line error ({kinds})")
    tally("malformed-input", tried=tried, bad=tried - clean)
    assert clean == tried
