"""Read-only stores: reading needs no write access; writing says the store is read-only.

Tests run as root in CI, and root ignores file modes. So the subprocess tests
drop the two capabilities that let root override them (`setpriv`), which
makes a mode-444 file and a mode-555 folder really read-only for it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mascope.errors import StoreError
from mascope.traces import TraceStore, bundle

ROOT = Path(__file__).resolve().parents[2]
DROP = "-dac_override,-dac_read_search"


def make_store(folder: Path) -> tuple[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ro.db"
    with TraceStore(path) as store:
        rid = store.start_run(team="t", task="read me")
        store.append_step(rid, agent="a", content="hello")
        store.finish_run(rid, status="failed", final_answer="no")
    return path, rid


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_read_only_flag_never_writes(tmp_path: Path) -> None:
    path, rid = make_store(tmp_path / "s")
    before = digest(path.parent)
    with TraceStore(path, read_only=True) as store:
        assert store.read_only
        assert [r.id for r in store.list_runs()] == [rid]
        assert bundle(store, rid).steps[0].content == "hello"
        assert store.recover_interrupted() == []
        with pytest.raises(StoreError, match="is read-only"):
            store.start_run(team="t")
        with pytest.raises(StoreError, match="is read-only"):
            store.append_step(rid, agent="a", content="more")
        with pytest.raises(StoreError, match="is read-only"):
            store.add_annotations(
                rid, [{"id": "x", "mode": "FM-1.1", "present": True, "annotator": "h"}]
            )
    after = digest(path.parent)
    assert after["ro.db"] == before["ro.db"]  # not a byte of the store changed
    # SQLite may make its WAL index beside a store in a writable folder; the WAL stays empty.
    assert (
        not (path.parent / "ro.db-wal").exists() or not (path.parent / "ro.db-wal").stat().st_size
    )


def test_read_only_refuses_to_create_or_migrate(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no trace store"):
        TraceStore(tmp_path / "none.db", read_only=True)
    assert list(tmp_path.iterdir()) == []


def _can_drop_override() -> str | None:
    """None if setpriv can take root's power to ignore file modes, else why not."""
    if shutil.which("setpriv") is None:
        return "setpriv is not installed"
    if os.geteuid() != 0:
        return None  # not root: file modes already apply
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"mascope-ro-probe-{os.getpid()}"
    probe.write_text("x")
    probe.chmod(0o444)
    try:
        done = subprocess.run(
            [
                "setpriv",
                f"--bounding-set={DROP}",
                f"--inh-caps={DROP}",
                "sh",
                "-c",
                f"echo y >> {probe}",
            ],
            capture_output=True,
        )
    finally:
        probe.unlink()
    return None if done.returncode != 0 else "cannot drop CAP_DAC_OVERRIDE in this container"


@pytest.fixture
def read_only_tree(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    why = _can_drop_override()
    if why:
        pytest.skip(f"cannot make a file read-only for this user: {why}")
    path, rid = make_store(tmp_path / "ro")
    path.chmod(0o444)
    path.parent.chmod(0o555)
    yield path, rid
    path.parent.chmod(0o755)
    path.chmod(0o644)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    prefix = (
        ["setpriv", f"--bounding-set={DROP}", f"--inh-caps={DROP}"] if os.geteuid() == 0 else []
    )
    return subprocess.run(
        [*prefix, sys.executable, "-m", "mascope.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MASCOPE_DB": ""},
        timeout=120,
    )


def test_reading_commands_work_on_a_read_only_store(
    read_only_tree: tuple[Path, str], tmp_path: Path
) -> None:
    path, rid = read_only_tree
    before = digest(path.parent)
    listed = cli("runs", "list", "--db", str(path), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert rid[:8] in listed.stdout or "read me" in listed.stdout
    shown = cli("runs", "show", rid, "--db", str(path), cwd=tmp_path)
    assert shown.returncode == 0 and "hello" in shown.stdout, shown.stderr
    out = tmp_path / "e.jsonl"
    exported = cli("runs", "export", rid, "--db", str(path), "--out", str(out), cwd=tmp_path)
    assert exported.returncode == 0 and rid in out.read_text(), exported.stderr
    refused = cli(
        "runs",
        "export",
        rid,
        "--db",
        str(path),
        "--out",
        str(path.parent / "e.jsonl"),
        cwd=tmp_path,
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert refused.stderr.count("\n") == 1 and "Permission denied" in refused.stderr
    assert digest(path.parent) == before


def test_writing_commands_say_the_store_is_read_only(
    read_only_tree: tuple[Path, str], tmp_path: Path
) -> None:
    path, rid = read_only_tree
    before = digest(path.parent)
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(
        '{"run": {"id": "01JZZZZZZZZZZZZZZZZZZZZZZZ", "status": "failed", "metadata": {}}, "steps": []}\n'
    )
    team = ROOT / "mascope" / "examples" / "solver_checker.yaml"
    for args in (
        ["runs", "import", "jsonl", str(jsonl)],
        ["run", str(team), "--task", "x", "-m", "scripted:none.yaml"],
        ["judge", rid, "-m", "scripted:none.yaml"],
    ):
        done = cli(*args, "--db", str(path), cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert "is read-only" in lines[0] and "--db" in lines[0], lines[0]
    assert digest(path.parent) == before


def test_a_read_only_file_in_a_writable_folder(tmp_path: Path) -> None:
    why = _can_drop_override()
    if why:
        pytest.skip(f"cannot make a file read-only for this user: {why}")
    path, rid = make_store(tmp_path / "f")
    path.chmod(0o444)
    try:
        listed = cli("runs", "list", "--db", str(path), "--json", cwd=tmp_path)
        assert listed.returncode == 0 and rid in listed.stdout, listed.stderr
        done = cli(
            "run",
            str(ROOT / "mascope/examples/solver_checker.yaml"),
            "--task",
            "x",
            "--db",
            str(path),
            cwd=tmp_path,
        )
        assert done.returncode == 2 and "is read-only" in done.stderr, done.stderr
        assert not [p for p in path.parent.iterdir() if "checkpoints" in p.name]
    finally:
        path.chmod(0o644)


def test_a_read_only_store_serves_many_threads_at_once(tmp_path: Path) -> None:
    """The TUI reads from a pool of worker threads; a read-only store must not close
    one thread's connection when another opens its own."""
    import threading

    db = tmp_path / "m.db"
    with TraceStore(db) as s:
        for i in range(30):
            s.start_run(team="t", task=f"task {i}")
    errors: list[BaseException] = []
    with TraceStore(db, read_only=True) as store:
        start = threading.Barrier(12)

        def read() -> None:
            try:
                start.wait()
                for _ in range(30):
                    assert store.count_runs() == 30
                    assert len(store.page_runs(limit=10).runs) == 10
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=read) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
