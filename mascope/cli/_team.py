"""`mascope team check | schema | docs`: team files, checked and documented."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import user_errors

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
