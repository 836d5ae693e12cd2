"""Opening a store for viewing: clear errors, nothing created."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mascope.cli import app
from mascope.errors import StoreError
from mascope.tui import open_for_viewing

from ..test_cli import assert_one_line_error


def test_a_missing_store_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(StoreError, match=r"no trace store at .*missing\.db.*mascope demo"):
        open_for_viewing(missing)
    assert not missing.exists()


def test_foreign_files_are_refused_unchanged(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("hello")
    with pytest.raises(StoreError, match="not a SQLite database"):
        open_for_viewing(text)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.close()
    before = other.read_bytes()
    with pytest.raises(StoreError, match="not a mascope trace store"):
        open_for_viewing(other)
    assert other.read_bytes() == before
    with pytest.raises(StoreError, match="is a folder"):
        open_for_viewing(tmp_path)


def test_urls_are_checked_before_opening(tmp_path: Path, db: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(StoreError, match="no trace store at"):
        open_for_viewing(f"sqlite+pysqlite:///{missing}")
    assert not missing.exists()
    with pytest.raises(StoreError, match="holds no mascope trace store"):
        open_for_viewing("sqlite://")
    with open_for_viewing(f"sqlite:///{db}") as store:
        assert store.count_runs() == 9


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = tmp_path / "missing.db"
    result = runner.invoke(app, ["tui", "--db", str(missing)])
    assert_one_line_error(result, str(missing), "mascope demo")
    assert not missing.exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x00" * 100)
    assert_one_line_error(runner.invoke(app, ["tui", "--db", str(junk)]), "not a SQLite database")


def test_cli_names_an_unknown_run(db: Path) -> None:
    result = CliRunner().invoke(app, ["tui", "NOPE", "--db", str(db)])
    assert_one_line_error(result, "no run 'NOPE'")


def test_the_cli_imports_textual_lazily() -> None:
    import subprocess
    import sys

    code = "import sys, mascope.cli; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_guide_example_runs(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    import shutil

    from textual.pilot import Pilot
    from textual.widgets import Static

    from mascope.tui import TraceApp

    from .conftest import settle

    guide = Path(__file__).resolve().parents[2] / "docs" / "tui.md"
    (code,) = re.findall(r"```python\n(.*?)```", guide.read_text(), re.S)
    shutil.copy(db, tmp_path / "guide.db")
    monkeypatch.chdir(tmp_path)
    code = code.replace('"mascope.db"', '"guide.db"')
    run = TraceApp.run

    async def look_and_quit(pilot: Pilot[None]) -> None:
        await settle(pilot)
        seen.append(pilot.app.screen.query_one("#runs-status", Static).content)
        pilot.app.exit()

    seen: list[object] = []
    monkeypatch.setattr(
        TraceApp, "run", lambda self, **kw: run(self, headless=True, auto_pilot=look_and_quit)
    )
    exec(compile(code, str(guide), "exec"), {"__name__": "guide"})
    assert "9 of 9 runs" in str(seen[0])


async def test_the_tui_browses_a_read_only_store(db: Path) -> None:
    from mascope.traces import TraceStore
    from mascope.tui import TraceApp
    from mascope.tui._run_screen import RunScreen

    from .conftest import RUN, screen_text, settle

    before = db.read_bytes()
    with TraceStore(db, create=False, read_only=True) as store:
        app = TraceApp(store, poll_interval=0.05)
        async with app.run_test(size=(130, 30)) as pilot:
            await settle(pilot)
            await pilot.pause(0.2)  # a few live polls
            app.open_run(RUN)
            await pilot.pause(0.2)
            await settle(pilot)
            assert isinstance(app.screen, RunScreen)
            assert "Write add(a, b)" in screen_text(app)
    assert db.read_bytes() == before
