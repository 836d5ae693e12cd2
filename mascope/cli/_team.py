"""`mascope team check | schema | docs`: team files, checked and documented."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mascope.errors import ConfigError

from ._common import DbOpt, JsonOpt, err, user_errors

team_app = typer.Typer(
    help="Check team files; print their JSON Schema and reference page.",
    no_args_is_help=True,
    add_completion=False,
)


@team_app.command("check")
@user_errors
def check(
    team_file: Annotated[Path, typer.Argument(help="The team YAML file.", show_default=False)],
) -> None:
    """Validate a team file and import its functions and tools, without running it."""
    from mascope.errors import ConfigError
    from mascope.graphs import Team, load_team_file
    from mascope.models import parse_model_string

    spec = load_team_file(team_file)
    models = {
        "model": spec.model,
        **{f"agents[{i}].model": a.model for i, a in enumerate(spec.agents)},
        **{f"verifiers.{n}.model": v.model for n, v in spec.verifiers.items()},
    }
    for where, model in models.items():
        try:
            if model is not None:
                parse_model_string(model)
        except ConfigError as exc:
            raise ConfigError(f"{team_file}: {where}: {exc}") from None
    # Building the team imports function: agents, tools and python verifiers and
    # compiles the graph; models load only when a run starts, so this stays cheap.
    # Calibration files a strategy names belong to this team and can drive its stopping rule.
    Team.from_spec(spec, source=str(team_file)).check_calibrations()
    print(
        f"{team_file}: OK ({len(spec.agents)} agent{'s' if len(spec.agents) != 1 else ''}, "
        f"{spec.topology.kind})"
    )


@team_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of team files (for the YAML language server and editors)."""
    from mascope.graphs import team_schema_text

    print(team_schema_text(), end="")


@team_app.command("docs")
def docs() -> None:
    """Print the team-file reference page (docs/teams.md), generated from the models."""
    from mascope.graphs import team_reference

    print(team_reference(), end="")


@team_app.command("calibrate-tau")
@user_errors
def calibrate_tau(
    team_file: Annotated[Path, typer.Argument(help="The team YAML file.", show_default=False)],
    stage: Annotated[
        int | None,
        typer.Option(help="The draft_defer stage (0-based; default: the team's only one).", min=0),
    ] = None,
    max_deferral_rate: Annotated[
        float,
        typer.Option(help="Most drafts the chosen tau may defer, as a share (0.3 = 30%)."),
    ] = 1.0,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Choose a draft_defer stage's tau from its recorded runs with a ground truth (see docs/runtime.md)."""
    import json

    from rich.table import Table

    from mascope.evals import MIN_RECORDS
    from mascope.evals import calibrate_tau as calibrate
    from mascope.graphs import Team

    from ._runs import open_store, out

    with open_store(db) as store:
        team = Team.from_yaml(team_file, store=store)
        got = calibrate(
            store, team, stage=stage, max_deferral_rate=max_deferral_rate, source=str(team_file)
        )
    if as_json:
        print(json.dumps(tau_json(got), ensure_ascii=False))
        return
    if not got.records:
        raise ConfigError(
            f"no recorded draft_defer runs of team {team.name!r} with a ground truth in {store.where}; "
            "run the team with --expect (or mascope eval run) at tau: 1 first"
        )
    skipped = "".join(f"; {n} left out ({why})" for why, n in got.skipped.items())
    out.print(
        f"{team.name} {got.node}: {len(got.records)} recorded drafts with a ground truth{skipped}"
    )
    table = Table("tau", "deferred", "accuracy", "95% interval", "strong tokens", "strong $")
    for p in got.points:
        low, high = p.interval or (None, None)
        table.add_row(
            f"{p.tau:g}" + (" *" if p is got.chosen else ""),
            f"{p.deferred}/{p.records}",
            "not evaluable" if p.accuracy is None else f"{p.accuracy:.2f}",
            "" if low is None else f"{low:.2f}-{high:.2f}",
            str(p.strong_tokens),
            f"{p.strong_cost_usd:.6f}",
        )
    out.print(table)
    if got.chosen is None:
        err.print(
            f"no evaluable tau defers at most {max_deferral_rate:g} of drafts; "
            "record runs at tau: 1 so every lower tau can be evaluated"
        )
        raise typer.Exit(1)
    out.print(
        f"chosen: tau {got.chosen.tau:g} (accuracy {got.chosen.accuracy:.2f}, defers {got.chosen.deferral_rate:.0%}); "
        f"set strategy.tau: {got.chosen.tau:g} on topology.stages[{got.stage}]"
    )
    if not got.reliable:
        err.print(
            f"only {len(got.records)} records (fewer than {MIN_RECORDS}): the intervals above are wide; "
            "treat this tau as a guess and record more runs"
        )


def tau_json(got: Any) -> dict[str, Any]:
    """A calibration as plain JSON data."""
    return {
        "stage": got.stage,
        "node": got.node,
        "records": len(got.records),
        "skipped": got.skipped,
        "reliable": got.reliable,
        "max_deferral_rate": got.max_deferral_rate,
        "chosen": None if got.chosen is None else got.chosen.tau,
        "points": [
            {
                "tau": p.tau, "deferred": p.deferred, "records": p.records, "accuracy": p.accuracy,
                "interval": list(p.interval) if p.interval else None,
                "strong_tokens": p.strong_tokens, "strong_cost_usd": p.strong_cost_usd,
            }
            for p in got.points
        ],
    }  # fmt: skip
