"""How `mascope attribute --method reroll` prints its measurements."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

SPARKS = " ▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """S(k) at the probed steps as one bar each."""
    return "".join(
        "?" if v is None else SPARKS[min(len(SPARKS) - 1, round(v * (len(SPARKS) - 1)))]
        for v in values
    )


def print_reroll(out: Console, result: Any) -> None:
    """The decisive step, the S(k) curve with intervals, the suggested correction."""
    if result.decided:
        verified = (
            f"verified by {result.replays_used} re-runs"
            if result.verified
            else "not borne out by the intervals"
        )
        out.print(
            f"run {result.run_id}: [bold]{result.agent}[/] at step [bold]{result.step}[/] "
            f"(reroll; {verified}); point of no return: step {result.point_of_no_return}"
        )
        if not result.verified:
            out.print(f"  measured over {result.replays_used} re-runs", markup=False)
    else:
        out.print(
            f"run {result.run_id}: undecided after {result.replays_used} re-runs; nothing is blamed"
        )
        if result.reason:
            out.print(f"  {result.reason.split(';')[0]}", markup=False)
    table = Table(
        title="S(k): success rate of re-rolls from step k (95% Wilson)",
        title_justify="left",
        header_style="bold",
        box=None,
    )
    for col in ("step", "agent", "succeeded", "S(k)", "95% interval", "crashed"):
        table.add_column(col)
    for p in result.curve:
        table.add_row(
            str(p["step"]), p["agent"], f"{p['successes']}/{p['n']}",
            "" if p["s"] is None else f"{p['s']:.2f}", f"[{p['low']:.2f}, {p['high']:.2f}]",
            str(p["errors"] or ""),
        )  # fmt: skip
    out.print(table)
    out.print(f"  S(k): {sparkline([p['s'] for p in result.curve])}  (then the recorded failure)")
    if result.intervention is not None:
        out.print(f"  suggested correction (replay {result.replay_run_id}):", markup=False)
        out.print(f"    {result.intervention[:500]}", markup=False)
    for note in result.notes:
        if note != result.reason:  # the undecided reason is already shown above
            out.print(f"  note: {note}", markup=False)
