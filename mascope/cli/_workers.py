"""`--workers` and `--ray-address`: batch commands on Ray workers pulling from the store's job queue."""

from __future__ import annotations

from typing import Annotated

import typer

WorkersOpt = Annotated[
    int | None,
    typer.Option(
        help="Run on this many Ray workers (a local Ray runtime unless --ray-address), each "
        "pulling items from the store's job queue; needs mascope[ray].",
        min=1,
        max=1024,
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Join this Ray cluster (e.g. ray://head:10001) instead of starting one; "
        "needs a PostgreSQL --db the workers can reach.",
    ),
]


def ray_workers(workers: int | None, ray_address: str | None) -> int | None:
    """How many Ray workers the command asked for (None: run in this process);
    a missing Ray is refused here, before anything is created."""
    if workers is None and ray_address is None:
        return None
    from mascope.jobs import check_ray

    check_ray()
    return workers or 1
