"""`mascope run`, `mascope demo`, `mascope runs resume` and `mascope runs fork`."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from mascope.settings import Settings

from ._common import MAX_COUNT, DbOpt, JsonOpt, SafeConsole, err, removed_if_failed, user_errors
from ._progress import lazy_progress_bar, progress_bar

if TYPE_CHECKING:
    from rich.console import Console

    from mascope.graphs import RestartEvent, RunResult, StepEvent, Team, TokenEvent

out = SafeConsole(highlight=False)

# Measured with the bundled team (solver at temperature 0.8, scored on the last
# number it states): right 4 times in 10, so most demo runs fail and a re-roll
# from the solver's step often succeeds, which is what the re-roll search needs.
# The muffin word problem in the README was right 0 times in 16.
DEMO_TASK = "What is 23 + 14?"
DEMO_ANSWER = "37"

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Use this model for every agent (e.g. local, openai:gpt-4o-mini, openai:NAME@URL).",
    ),
]


def _store(db: str | None) -> Any:
    from mascope.traces import TraceStore

    settings = Settings.load(db=db or None)
    # read_only=False: a store this user cannot write is refused before anything is created.
    store = TraceStore(settings.db, settings=settings, read_only=False)
    if store.is_sqlite and store.path is None:
        from mascope.errors import ConfigError

        store.close()
        raise ConfigError(
            f"--db {settings.db} is an in-memory store, gone when this command ends; "
            "pass a file path (e.g. --db runs.db)"
        )
    return store


def _printer(as_json: bool) -> Any:
    from mascope._style import agent_style
    from mascope.traces import PAUSE_EVENT

    from ._render import short

    def show(event: StepEvent) -> None:
        if as_json:
            return
        line = Text()
        line.append(f"{event.index:>4} ", style="dim")
        line.append(event.agent, style=f"bold {agent_style(event.agent)}")
        style = {
            "verdict": "bold",
            "error": "bold red",
            "refusal": "red",
            "retry": "yellow",
            "event": "dim",
        }.get(event.kind, "dim")
        if event.event_name == PAUSE_EVENT:  # the question a person must answer
            line.append(f" {'paused':<11} ", style="bold cyan")
            line.append("waiting for a person: ", style="cyan")
            line.append(short(event.content, 90))
            out.print(line, soft_wrap=True, overflow="ellipsis", no_wrap=True)
            return
        # Padded and followed by a space: the longest kind (tool_result) is 11 wide.
        line.append(f" {event.kind:<11} ", style=style)
        text = short(event.content, 90)
        if event.kind == "verdict":
            line.append(text, style="green" if text.startswith("PASSED") else "red")
        else:
            line.append(text)
        if event.input_tokens or event.output_tokens:
            line.append(
                f"  [{event.input_tokens or 0}+{event.output_tokens or 0} tok]", style="dim"
            )
        out.print(line, soft_wrap=True, overflow="ellipsis", no_wrap=True)

    return show


StreamOpt = Annotated[
    bool | None,
    typer.Option(
        "--stream/--no-stream",
        help="Show each agent's answer as it is generated (default: on when the output is a "
        "terminal and not --json; with --json the answer goes to stderr).",
    ),
]


class _LiveAnswers:
    """Prints the pieces of each answer as they arrive, on a line of their own that
    the agent's next step (or another agent's piece) ends."""

    def __init__(self, console: Console, show_step: Any):
        self.console = console
        self.show_step = show_step
        self.open: tuple[str, int | None] | None = None

    def step(self, event: StepEvent) -> None:
        self._end_line()
        self.show_step(event)

    def token(self, event: TokenEvent | RestartEvent) -> None:
        from mascope._style import agent_style
        from mascope.graphs import RestartEvent

        key = (event.agent, event.sample)
        if isinstance(event, RestartEvent):
            self._end_line()
            self.console.print(
                Text(f"     {event.agent}'s answer starts again (attempt {event.attempt}): ")
                .append(event.reason or "its call was retried")
                .append("; the text above is void", style="dim"),
                style="yellow",
                soft_wrap=True,
            )
            return
        if self.open != key:
            self._end_line()
            head = Text("     ").append(event.agent, style=f"bold {agent_style(event.agent)}")
            if event.sample is not None:
                head.append(f" #{event.sample}", style="dim")
            self.console.print(head.append(" > ", style="dim"), end="", soft_wrap=True)
            self.open = key
        self.console.print(Text(event.text), end="", soft_wrap=True)

    def _end_line(self) -> None:
        if self.open is not None:
            self.console.print()
            self.open = None


def _live(as_json: bool, stream: bool | None) -> tuple[Any, Any]:
    """`(on_step, on_token)` for a run printed as it goes (`on_token` None: not streamed)."""
    show = _printer(as_json)
    if stream is None:
        stream = not as_json and out.is_terminal
    if not stream:
        return show, None
    answers = _LiveAnswers(err if as_json else out, show)
    return answers.step, answers.token


def _report(result: RunResult, store: Any, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "run_id": result.run_id,
                    "status": result.status,
                    "answer": result.answer,
                    "termination_reason": result.termination_reason,
                    "steps": result.step_count,
                    "input_tokens": result.input_tokens,
                    "output_tokens": result.output_tokens,
                    "cost_usd": result.cost_usd,
                    "error": result.error,
                    "parent_run_id": result.parent_run_id,
                    "fork_step": result.fork_step,
                    "prompt": result.prompt,
                    "db": store.where,
                },
                ensure_ascii=False,
            )
        )
        return
    from mascope._style import STATUS_STYLE

    from ._render import short

    out.print()
    status = Text(f"{result.status}", style=STATUS_STYLE.get(result.status, ""))
    out.print(
        Text("outcome: ").append(status).append(f" ({result.termination_reason})", style="dim")
    )
    out.print(f"answer:  {short(result.answer or '-', 200)}", markup=False)
    cost = "" if result.cost_usd is None else f", ${result.cost_usd:.4f}"
    out.print(
        f"usage:   {result.step_count} steps, {result.input_tokens:,} in / {result.output_tokens:,} out tokens{cost}",
        markup=False,
    )
    if result.error:
        out.print(Text(f"error:   {result.error}", style="red"))
    db = _db_flag(store)
    if result.paused:
        out.print(Text("paused for a person's input:", style="bold cyan"))
        out.print(result.prompt or "", markup=False)
        # Not wrapped: a command to copy whole.
        cmd = f"continue: mascope runs resume {result.run_id}{db} --input TEXT"
        out.print(cmd, markup=False, soft_wrap=True)
    out.print(f"trace:   run {result.run_id} in {store.where}", markup=False)
    out.print(f"next:    mascope runs show {result.run_id}{db}", markup=False)
    out.print(f"         mascope tui {result.run_id}{db}   (browse it; ? for keys)", markup=False)


def _db_flag(store: Any) -> str:
    """The `--db` a printed command needs to find this store (none for the default)."""
    return "" if str(store.path) == "mascope.db" else f" --db {store.where}"


PAUSED_EXIT = 4
"""Exit code of a run that paused for a person's input (README's exit-code table)."""


def _exit_for(result: RunResult) -> None:
    if result.paused:
        raise typer.Exit(PAUSED_EXIT)
    if not result.succeeded:
        raise typer.Exit(1)


@user_errors
def run(
    team_file: Annotated[Path, typer.Argument(metavar="TEAM.yaml", help="The team to run.")],
    task: Annotated[str, typer.Option("--task", "-t", help="What the team should do.")],
    expect: Annotated[
        str | None,
        typer.Option(
            "--expect",
            help="The right answer, if known: stored as ground truth and decides success.",
        ),
    ] = None,
    model: ModelOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    stream: StreamOpt = None,
) -> None:
    """Run a team on a task, streaming its steps; exit 0 if it succeeded, 1 if not, 4 if it paused for a person."""
    from mascope.graphs import Team, load_team_file

    spec = load_team_file(team_file)  # every YAML mistake is reported before any model loads
    with removed_if_failed(db):  # a run that cannot start leaves no store behind
        store = _store(db)
        team = Team.from_spec(spec, model=model, store=store, source=str(team_file))
        team.check_models()  # a missing key is the only line, not after the run's header
        _start(team, task, as_json)
        on_step, on_token = _live(as_json, stream)
        result = team.run(task, ground_truth=expect, on_step=on_step, on_token=on_token)
    _report(result, store, as_json)
    _exit_for(result)


def _start(team: Team, task: str, as_json: bool) -> None:
    if not as_json:
        from ._render import short

        shown = escape(short(team.store.redact.text(task), 100))
        name = escape(team.store.redact.text(team.name))
        err.print(f"[bold]{name}[/]: {shown}", markup=True, highlight=False)


@user_errors
def demo(
    model: ModelOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a bundled team (solver + checker) on the embedded model and show what happened."""
    from mascope.graphs import Team, load_team_file

    path = Path(str(files("mascope.examples").joinpath("solver_checker.yaml")))
    with removed_if_failed(db):
        store = _store(db)
        team = Team.from_spec(load_team_file(path), model=model, store=store, source=str(path))
        _start(team, DEMO_TASK, as_json)
        on_step, on_token = _live(as_json, None)
        result = team.run(DEMO_TASK, ground_truth=DEMO_ANSWER, on_step=on_step, on_token=on_token)
    _report(result, store, as_json)
    if as_json:
        return
    # The solver samples, so a run can succeed; the demo is about diagnosing a
    # failure, so it tries again a couple of times (each run is recorded).
    for _ in range(DEMO_ATTEMPTS - 1):
        if not result.succeeded:
            break
        out.print(
            "\nThat run succeeded. The embedded model gets this task right only some of the time, "
            "and mascope is for the runs that fail, so here is another run:",
            style="dim",
        )
        result = team.run(DEMO_TASK, ground_truth=DEMO_ANSWER, on_step=on_step, on_token=on_token)
        _report(result, store, False)
    _diagnose(team, store, result)


DEMO_ATTEMPTS = 3
DEMO_JUDGE_SECONDS = 45
"""The judge's share of the demo (its call is cancelled after it, generation and all)."""
DEMO_REROLL_SECONDS = 60
"""The re-roll search's share: no new re-run starts after it; what was measured is reported."""
DEMO_SAMPLES = 6
DEMO_MAX_REPLAYS = 40


def _diagnose(team: Team, store: Any, result: RunResult) -> None:
    """Rule detectors, the judge and, for a failed run, the re-roll search on the demo's run."""
    import asyncio

    from mascope.diagnosis import ajudge, apply_rules
    from mascope.errors import MascopeError
    from mascope.taxonomy import MAST

    if result.succeeded:
        out.print(
            f"\nThe team succeeded {DEMO_ATTEMPTS} times in a row, so there is no failure to diagnose; "
            "run mascope demo again, or try mascope run on a harder task.",
            style="dim",
        )
        return
    findings = apply_rules(store, result.run_id)
    out.print()
    if findings:
        out.print("rule detectors found:", style="bold")
        for f in findings:
            out.print(
                f"  {f.mode} {MAST.mode(f.mode).name} at steps {f.evidence_steps}: {f.rationale}",
                markup=False,
            )
    else:
        out.print("rule detectors found nothing", style="bold")
    judge_model = team.resolved.model
    out.print(f"judging the run with {judge_model} ...", style="dim")

    async def judge() -> Any:
        with progress_bar("judging: window", None) as bar:
            return await asyncio.wait_for(
                ajudge(
                    store,
                    result.run_id,
                    model=judge_model,
                    on_window=lambda done, total: bar.set(done, total),
                ),
                timeout=DEMO_JUDGE_SECONDS,
            )

    try:
        judgement = asyncio.run(judge())
        # Only modes whose cited evidence checked out; the rest are listed as uncertain.
        present = judgement.present
        out.print(
            f"LLM judge ({judge_model}), findings whose evidence checks out: "
            f"{', '.join(f'{m} {MAST.mode(m).name}' for m in present) if present else 'none'}",
            markup=False,
        )
        if judgement.uncertain:
            out.print(
                f"  not reported (said present, but the steps or quotes cited do not show it): "
                f"{', '.join(judgement.uncertain)}",
                style="dim",
                markup=False,
            )
        if len(present) > 8:
            out.print(
                "  (a 135M-parameter model marks nearly everything; judge with a stronger model: "
                f"mascope judge {result.run_id}{_db_flag(store)} -m openai:gpt-4o-mini)",
                style="dim",
                markup=False,
            )
    except MascopeError as exc:
        out.print(f"the judge could not label this run: {exc}", style="yellow", markup=False)
    except TimeoutError:
        out.print(
            f"the judge ({judge_model}) did not finish within {DEMO_JUDGE_SECONDS} s; to wait for it: "
            f"mascope judge {result.run_id}{_db_flag(store)}",
            style="yellow",
            markup=False,
        )
    _reroll(team, store, result)
    out.print(
        "\nThe run failed, which is what mascope is for: inspect it, and the re-runs above "
        "as its branches, with the commands above.",
        style="dim",
    )


def _reroll(team: Team, store: Any, result: RunResult) -> None:
    """Where the run's failure became inevitable, measured by re-running the team from its steps."""
    import asyncio

    from mascope.diagnosis import aattribute
    from mascope.errors import MascopeError

    from ._reroll import print_reroll

    out.print(
        "\nattributing the failure by measurement: re-running the team from its steps "
        f"(reroll, up to {DEMO_REROLL_SECONDS} s) ...",
        style="dim",
    )

    async def measure() -> Any:
        with lazy_progress_bar("re-rolling") as update:
            return await aattribute(
                store, result.run_id, method="reroll", team=team, samples=DEMO_SAMPLES,
                max_replays=DEMO_MAX_REPLAYS, concurrency=1, max_seconds=DEMO_REROLL_SECONDS,
                on_replay=update,
            )  # fmt: skip

    try:
        blame = asyncio.run(measure())
    except MascopeError as exc:
        out.print(f"could not attribute this run: {exc}", style="yellow", markup=False)
        return
    print_reroll(out, blame)
    more = f"mascope attribute {result.run_id}{_db_flag(store)} --method reroll"
    if not blame.decided:
        out.print(f"  to measure further (the re-runs so far are kept): {more}", markup=False)


@user_errors
def resume(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    reply: Annotated[
        str | None,
        typer.Option(
            "--input",
            "-i",
            help="A paused run: the person's reply to its question (the agents after the pause see it).",
        ),
    ] = None,
    model: ModelOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    stream: StreamOpt = None,
) -> None:
    """Continue a killed or interrupted run from its last checkpoint, or a paused one with --input."""
    team, store, rid = _team_of(run_id, db, model)
    on_step, on_token = _live(as_json, stream)
    result = team.resume(rid, input=reply, on_step=on_step, on_token=on_token)
    _report(result, store, as_json)
    _exit_for(result)


@user_errors
def fork(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    step: Annotated[
        int,
        typer.Option(
            "--step", "-k", help="The step whose output to replace.", min=0, max=MAX_COUNT
        ),
    ],
    content: Annotated[
        str,
        typer.Option(
            "--content",
            "-c",
            help="The replacement output (for a verdict: pass, fail: why, or JSON).",
        ),
    ],
    model: ModelOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    stream: StreamOpt = None,
) -> None:
    """Re-run a run from step K with that step's output replaced; records a child run."""
    team, store, rid = _team_of(run_id, db, model)
    on_step, on_token = _live(as_json, stream)
    result = team.fork(rid, step=step, content=content, on_step=on_step, on_token=on_token)
    _report(result, store, as_json)
    _exit_for(result)


def _team_of(run_id: str, db: str | None, model: str | None) -> tuple[Team, Any, str]:
    from mascope.graphs import Team

    store = _store(db)
    rid = store.resolve_run_id(run_id)
    return Team.from_run(store, rid, model=model), store, rid
