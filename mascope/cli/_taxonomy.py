"""`mascope taxonomy show`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._common import JsonOpt, user_errors

taxonomy_app = typer.Typer(
    help="Show failure taxonomies.", no_args_is_help=True, add_completion=False
)


@taxonomy_app.command("show")
@user_errors
def show(
    name: Annotated[
        str, typer.Argument(help="A built-in taxonomy (mast) or a YAML file.")
    ] = "mast",
    as_json: JsonOpt = False,
) -> None:
    """Show a taxonomy's categories and failure modes."""
    from mascope.taxonomy import get_taxonomy

    taxonomy = get_taxonomy(name)
    if as_json:
        print(json.dumps(taxonomy.model_dump(), ensure_ascii=False))
        return
    console = Console(highlight=False, width=None if Console().is_terminal else 160)
    console.print(
        f"[bold]{taxonomy.name}[/] ({taxonomy.id} v{taxonomy.version}, {len(taxonomy.modes)} modes)"
    )
    for cat in taxonomy.categories:
        table = Table(
            title=f"{cat.id} {cat.name}",
            title_justify="left",
            box=None,
            header_style="bold",
            pad_edge=False,
        )
        table.add_column("id", no_wrap=True)
        table.add_column("mode", no_wrap=True)
        table.add_column("definition")
        for m in taxonomy.modes:
            if m.category == cat.id:
                table.add_row(m.id, m.name, m.definition)
        console.print(table)
        console.print()
