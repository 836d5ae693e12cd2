"""The `reroll` attribution: measure where a failed run's failure became inevitable.

S(k) is the success rate of re-executing the failed run from step k onward:
steps before k as recorded, step k and everything after produced live again by
the team's own agents (`Team.areroll`). S(k) - S(k+1) is what step k's
recorded output cost the run; the decisive step is the largest such drop
(earliest on ties), the point of no return the last step whose S is clearly
above zero (at least one re-roll succeeded, so its Wilson lower bound is
above zero). No model reads the trace: the team's verifiers and the ground
truth decide each re-roll.

The search is adaptive: a binary search for the point of no return (a step
is "alive" as soon as one re-roll from it succeeds, "dead" after `samples`
re-rolls that all fail), then refinement: the alive side of the boundary is
topped up to `samples` re-rolls, and any gap between probed steps whose
intervals show a clear drop is bisected, all under `max_replays`. Re-rolls
are child runs of the failed run, so a killed search that is started again
counts the ones already recorded instead of redoing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mascope._vocabulary import TRANSCRIPT_KINDS
from mascope.agents import samples as fn_samples
from mascope.errors import ConfigError, MascopeError, UserError
from mascope.traces import Run, Step, TraceStore

from ._metrics import wilson

if TYPE_CHECKING:
    from mascope.graphs import Team

    from ._blame import AttributionResult

REROLL = "re-roll"
FINISHED = ("succeeded", "failed", "error")
DEFAULT_SAMPLES = 12
DEFAULT_MAX_REPLAYS = 60
MISS = 0.01
"""Odds, at most, that a step the search calls dead had the success rate of the step before it."""


@dataclass
class Probe:
    """What the re-rolls from one step measured."""

    step: int
    agent: str
    successes: int = 0
    n: int = 0
    errors: int = 0
    success_run: str | None = None
    """One re-roll from this step that succeeded."""

    @property
    def rate(self) -> float | None:
        return self.successes / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.successes, self.n) if self.n else (0.0, 1.0)

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            "step": self.step, "agent": self.agent, "successes": self.successes, "n": self.n,
            "s": self.rate, "low": low, "high": high, "errors": self.errors,
        }  # fmt: skip


@dataclass(frozen=True)
class Position:
    """A step the run can be re-rolled from: the first message or verdict of a node."""

    step: int
    agent: str
    start: int
    """The first step its node recorded (tool calls, events before the message)."""


@dataclass
class _Search:
    store: TraceStore
    team: Team
    run: Run
    positions: list[Position]
    samples: int
    max_replays: int
    concurrency: int
    temperature: float | None
    recorded: dict[int, list[Run]] = field(default_factory=dict)
    deadline: float | None = None
    """`time.monotonic()` after which no new re-roll starts (a time budget)."""
    on_replay: Callable[[int, int], None] | None = None
    """Told (re-runs so far, the most allowed) when the search starts and after each re-roll."""
    probes: dict[int, Probe] = field(default_factory=dict)
    replays: list[dict[str, Any]] = field(default_factory=list)
    used: int = 0
    reused: int = 0
    cost: float | None = 0.0

    def spent(self) -> bool:
        """Whether the budget (re-runs, or time) allows no more re-rolls."""
        return self.used >= self.max_replays or (
            self.deadline is not None and time.monotonic() >= self.deadline
        )

    def probe(self, i: int) -> Probe:
        pos = self.positions[i]
        return self.probes.setdefault(i, Probe(pos.step, pos.agent))

    def _count(self, i: int, run_id: str, status: str, error: str | None) -> None:
        p = self.probe(i)
        p.n += 1
        self.used += 1
        if status == "succeeded":
            p.successes += 1
            p.success_run = p.success_run or run_id
        elif status == "error":
            p.errors += 1
        self.replays.append(
            {"step": p.step, "run_id": run_id, "status": status}
            | ({"error": error} if error else {})
        )
        if self.on_replay is not None:
            self.on_replay(self.used, self.max_replays)

    async def _one(self, i: int) -> tuple[str, str, str | None, float | None]:
        step = self.positions[i].step
        meta = {"reroll": {"of": self.run.id, "step": step, "temperature": self.temperature}}
        try:
            r = await self.team.areroll(self.run.id, step=step, metadata=meta)
        except (KeyboardInterrupt, asyncio.CancelledError):
            raise
        except Exception as exc:  # a crashed re-roll is a failed re-roll, not a failed search
            text = str(exc) if isinstance(exc, MascopeError) else f"{type(exc).__name__}: {exc}"
            return "", "error", text, 0.0
        return r.run_id, r.status, r.error, r.cost_usd

    async def draw(self, i: int, count: int) -> None:
        """`count` more re-rolls from position i: recorded ones first, then new ones at once."""
        queue = self.recorded.get(i, [])
        while count and queue and self.used < self.max_replays:
            old = queue.pop(0)
            self.reused += 1
            self._count(i, old.id, old.status, (old.metadata_ or {}).get("error"))
            count -= 1
        count = min(count, self.max_replays - self.used)
        while count > 0 and not self.spent():
            batch = min(count, self.concurrency)
            for run_id, status, error, cost in await asyncio.gather(
                *(self._one(i) for _ in range(batch))
            ):
                self.cost = None if cost is None or self.cost is None else self.cost + cost
                self._count(i, run_id, status, error)
            count -= batch

    async def alive(self, i: int) -> bool | None:
        """Whether a re-roll from position i can succeed; None when the budget ran out first."""
        p = self.probe(i)
        while True:
            if p.successes:
                return True
            if p.n >= self.samples:
                return False
            if self.spent():
                return None
            # Doubling batches: one success settles it, so do not pay for a full batch up front.
            await self.draw(i, min(self.samples - p.n, self.concurrency, max(1, p.n)))

    async def top_up(self, i: int) -> None:
        p = self.probe(i)
        if p.n < self.samples:
            await self.draw(i, self.samples - p.n)

    def clear_drop(self, a: int, b: int) -> bool:
        """Whether S falls from position a to position b beyond doubt (b == len: the recorded failure)."""
        pa = self.probes.get(a)
        if pa is None or not pa.successes:
            return False
        if b == len(self.positions):
            return True
        pb = self.probes.get(b)
        if pb is None or pb.n < self.samples:
            return False
        if pb.successes == 0:
            return pb.n >= self.enough_failures(pa)
        return pa.interval[0] > pb.interval[1]

    def enough_failures(self, alive: Probe) -> int:
        """Failed re-rolls that call a step dead next to `alive`: so many that, had it
        `alive`'s success rate, seeing none succeed would have had odds below 1 in 100."""
        # The rate's lower bound (one-sided 90%): a dozen re-rolls can overstate it,
        # and an overstated rate would call a rarely successful step dead too soon.
        rate = wilson(alive.successes, alive.n, z=1.28)[0] if alive.n else 0.0
        if rate >= 1:
            return self.samples
        if rate <= 0:
            return 3 * self.samples
        # Capped: a rate estimated from a dozen re-rolls can be far too low.
        need = math.ceil(math.log(MISS) / math.log(1 - rate))
        return min(max(self.samples, need), 3 * self.samples)

    def rate(self, i: int) -> float | None:
        return 0.0 if i == len(self.positions) else self.probes[i].rate

    async def search(self) -> int | None:
        """The point of no return (a position index), or None when undecided."""
        m = len(self.positions)
        lo, hi = -1, m  # lo: a re-roll from it succeeded; hi: none did
        while True:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                found = await self.alive(mid)
                if found is None:
                    return None
                lo, hi = (mid, hi) if found else (lo, mid)
            if lo < 0:
                return None
            await self.top_up(lo)
            if hi == m:
                break
            # `samples` failures are weak evidence when success is rare anyway:
            # confirm the boundary with as many failures as the rate at lo calls for.
            dead = self.probe(hi)
            need = self.enough_failures(self.probe(lo))
            while dead.n < need and not dead.successes and not self.spent():
                await self.draw(hi, min(need - dead.n, self.concurrency))
            if not dead.successes:
                if dead.n < need:
                    return None
                break
            lo = hi  # it was alive after all: search on above it
            hi = min(
                (i for i, p in self.probes.items() if i > lo and p.n and not p.successes), default=m
            )
        await self.refine()
        return lo

    async def refine(self) -> None:
        """Bisect gaps between probed steps that show a clear drop, to place it on one step."""
        while not self.spent():
            probed = sorted(self.probes)
            gap = next(
                (
                    (a, b)
                    for a, b in itertools.pairwise(probed)
                    if b - a > 1 and self.clear_drop(a, b)
                ),
                None,
            )
            if gap is None:
                return
            mid = (gap[0] + gap[1]) // 2
            await self.top_up(mid)
            if self.probe(mid).n < self.samples:
                return

    def decisive(self) -> int | None:
        """The position with the largest measured drop to the next position (earliest on ties)."""
        best: tuple[float, int] | None = None
        for i in sorted(self.probes):
            nxt = i + 1
            if nxt != len(self.positions) and nxt not in self.probes:
                continue
            here, there = self.rate(i), self.rate(nxt)
            # Only a drop the intervals bear out counts: an early probe stopped
            # at its first success has a rate of 1/1 that means little.
            if here is None or there is None or not self.clear_drop(i, nxt):
                continue
            drop = here - there
            if best is None or drop > best[0]:
                best = (drop, i)
        return best[1] if best is not None and best[0] > 0 else None


def reroll_positions(store: TraceStore, run: Run, team: Team) -> list[Position]:
    """The steps of `run` a re-roll can start from, in order."""
    from mascope.graphs._reroll import rerollable

    return [Position(s.index, s.agent, start) for s, start in rerollable(team, store.steps(run.id))]


def _stochastic(team: Team, temperature: float | None) -> str | None:
    """Why re-rolls of `team` would only repeat the recorded run, or None if they can differ."""
    llm = [a for a in team.agents.values() if a.fn is None]
    if any(fn_samples(a.fn) for a in team.agents.values() if a.fn is not None):
        return None
    if any(fn_samples(getattr(v, "fn", None)) for v in team.verifiers.values()):
        return None
    if temperature is not None:
        if temperature > 0 and llm:
            return None
        if not llm:
            return (
                f"team {team.name} is made of Python function agents, which --temperature does not change; "
                "they are deterministic unless they sample (mark such a function with mascope.agents.sampling)"
            )
        return f"at --temperature {temperature:g} every re-roll of team {team.name} repeats the recorded run; use a temperature above 0"
    if llm and any(a.spec.temperature is None or a.spec.temperature > 0 for a in llm):
        return None
    if llm:
        return (
            f"team {team.name} runs at temperature 0, so every re-roll repeats the recorded run; "
            "pass --temperature T (for example 0.7) to sample its agents"
        )
    return (
        f"team {team.name} is made of deterministic Python function agents, so every re-roll repeats "
        "the recorded run; function agents are deterministic unless they sample (mark such a function "
        "with mascope.agents.sampling)"
    )


@contextlib.contextmanager
def _at_temperature(team: Team, temperature: float | None) -> Iterator[None]:
    """Run the team's model agents at `temperature` for the replays, then put them back."""
    if temperature is None:
        yield
        return
    saved = {n: a.spec for n, a in team.agents.items() if a.fn is None}
    try:
        for name, spec in saved.items():
            team.agents[name].spec = spec.model_copy(update={"temperature": temperature})
        yield
    finally:
        for name, spec in saved.items():
            team.agents[name].spec = spec


def _rebuild(store: TraceStore, run: Run) -> Team:
    from mascope.graphs import Team

    try:
        return Team.from_run(store, run.id)
    except UserError as exc:
        raise UserError(f"{exc}; from Python, pass team= to attribute") from None


def _recorded(
    store: TraceStore, run: Run, found: list[Position], temperature: float | None
) -> dict[int, list[Run]]:
    """Finished re-rolls of `run` already in the store, by position (a killed search's work)."""
    by_step = {p.step: i for i, p in enumerate(found)}
    out: dict[int, list[Run]] = {}
    for child in store.child_runs(run.id, limit=1_000_000):
        kind = (child.intervention or {}).get("kind")
        made = (child.metadata_ or {}).get("reroll") or {}
        if kind != REROLL or child.status not in FINISHED or child.fork_step not in by_step:
            continue
        if made.get("temperature") != temperature:
            continue
        if "repair" in (child.metadata_ or {}):
            continue  # re-run by the repair benchmark to measure a repair, not a draw of this search
        out.setdefault(by_step[child.fork_step], []).append(child)
    return out


def _correction(store: TraceStore, replay_id: str, pos: Position) -> str | None:
    """What the decisive step's agent said in a successful re-roll from it."""
    steps: list[Step] = store.steps(replay_id, offset=pos.start)
    for s in steps:
        if s.agent == pos.agent and s.kind in TRANSCRIPT_KINDS:
            return s.content
    return None


def _fmt(p: Probe) -> str:
    low, high = p.interval
    return f"{p.step}:{p.successes}/{p.n} [{low:.2f},{high:.2f}]"


async def aestimate(
    store: TraceStore,
    run_id: str,
    *,
    step: int,
    samples: int,
    team: Team | None = None,
    temperature: float | None = None,
    concurrency: int = 4,
) -> Probe:
    """S(step): re-roll a failed run `samples` times from `step` (re-rolls already recorded count)."""
    run = check_run(store, run_id)
    team = team or _rebuild(store, run)
    why = _stochastic(team, temperature)
    if why is not None:
        raise UserError(f"cannot re-roll run {run.id}: {why}")
    found = reroll_positions(store, run, team)
    at = next((i for i, p in enumerate(found) if p.step == step), None)
    if at is None:
        steps = ", ".join(str(p.step) for p in found)
        raise UserError(
            f"run {run.id} cannot be re-rolled from step {step}; it can from steps {steps}"
        )
    search = _Search(
        store, team, run, found, samples, samples, concurrency, temperature,
        recorded=_recorded(store, run, found, temperature),
    )  # fmt: skip
    with _at_temperature(team, temperature):
        await search.draw(at, samples)
    return search.probe(at)


def check_run(store: TraceStore, run_id: str) -> Run:
    """The run, if it is a finished, failed run mascope ran; else a one-line UserError."""
    rid = store.resolve_run_id(run_id)
    run = store.get_run(rid)
    if run.status == "running":
        raise UserError(f"run {rid} is still running; re-roll it when it has finished")
    if run.status == "interrupted":
        raise UserError(f"run {rid} was interrupted; resume it first (mascope runs resume {rid})")
    if run.status == "paused":
        raise UserError(
            f"run {rid} is paused for a person's input; continue it first (mascope runs resume {rid} --input TEXT)"
        )
    if run.status == "succeeded":
        raise UserError(f"run {rid} succeeded; there is no failure to attribute")
    if run.source != "native" or not run.spec:
        raise UserError(
            f"run {rid} was imported ({run.source}) and cannot be re-run; reroll needs a run mascope ran"
        )
    return run


async def areroll_attribute(
    store: TraceStore,
    run_id: str,
    *,
    team: Team | None = None,
    samples: int = DEFAULT_SAMPLES,
    max_replays: int = DEFAULT_MAX_REPLAYS,
    temperature: float | None = None,
    concurrency: int = 4,
    save: bool = True,
    max_seconds: float | None = None,
    on_replay: Callable[[int, int], None] | None = None,
) -> AttributionResult:
    """The `reroll` method: see the module docstring; `attribute(..., method="reroll")` calls this."""
    from ._blame import AttributionResult

    for name, value, least in (("samples", samples, 1), ("max replays", max_replays, 1), ("concurrency", concurrency, 1)):  # fmt: skip
        if value < least:
            raise ConfigError(f"{name} must be at least {least} (got {value})")
    if temperature is not None and not 0 <= temperature <= 2:
        raise ConfigError(f"temperature must be between 0 and 2 (got {temperature:g})")
    if max_seconds is not None and not max_seconds > 0:
        raise ConfigError(f"max seconds must be above 0 (got {max_seconds:g})")
    started = time.monotonic()
    run = check_run(store, run_id)
    if team is None:
        team = _rebuild(store, run)
    why = _stochastic(team, temperature)
    if why is not None:
        raise UserError(f"cannot re-roll run {run.id}: {why}")
    found = reroll_positions(store, run, team)
    if not found:
        raise UserError(f"run {run.id} has no agent message or verdict to re-roll from")
    from mascope.graphs._reroll import missing_checkpoint

    by_index = {s.index: s for s in store.steps(run.id)}
    gone = await missing_checkpoint(team, run.id, [by_index[p.step] for p in found])
    if gone is not None:
        raise UserError(
            f"run {run.id} cannot be re-run: the checkpoint before step {gone} is gone (was the checkpoint file deleted?)"
        )
    search = _Search(
        store, team, run, found, samples, max_replays, concurrency, temperature,
        recorded=_recorded(store, run, found, temperature),
        deadline=None if max_seconds is None else started + max_seconds, on_replay=on_replay,
    )  # fmt: skip
    if on_replay is not None:  # checks passed: the search starts
        on_replay(0, max_replays)
    with _at_temperature(team, temperature):
        point = await search.search()
    probed = [search.probes[i] for i in sorted(search.probes) if search.probes[i].n]
    curve = [p.as_dict() for p in probed]
    measured = "; ".join(_fmt(p) for p in probed) or "nothing"
    result = AttributionResult(run.id, "reroll", None, None, verified=False)
    result.replays, result.cost_usd, result.model_calls = search.replays, search.cost, 0
    result.with_ground_truth = run.ground_truth is not None
    result.curve = curve
    decisive = search.decisive() if point is not None else None
    if search.reused:
        result.notes.append(f"{search.reused} re-roll(s) recorded earlier were counted, not redone")
    errors = sum(1 for r in search.replays if r["status"] == "error")
    if errors:
        result.notes.append(f"{errors} re-roll(s) crashed and count as failed")
    if point is None or decisive is None:
        result.decided = False
        if search.used >= max_replays:
            why_not = f"the budget of {max_replays} re-runs ran out"
        elif search.spent():
            why_not = f"the time budget of {max_seconds:g} s ran out after {search.used} re-runs"
        else:
            why_not = "no re-roll from any probed step succeeded, so no step can be blamed"
        result.reason = f"undecided: {why_not}; S(k) measured (step:successes/re-rolls [95% Wilson]): {measured}"
        result.notes.append(result.reason)
    else:
        pos = found[decisive]
        probe = search.probes[decisive]
        after = found[decisive + 1].step if decisive + 1 < len(found) else None
        drop = (probe.rate or 0.0) - (search.rate(decisive + 1) or 0.0)
        result.decided = True
        result.agent, result.step = pos.agent, pos.step
        result.point_of_no_return = found[point].step
        result.verified = search.clear_drop(decisive, decisive + 1)
        result.confidence = round(drop, 4)
        result.replay_run_id = probe.success_run
        if probe.success_run is not None:
            result.intervention = _correction(store, probe.success_run, pos)
        low, high = probe.interval
        result.reason = (
            f"re-rolled from step {pos.step}, the run succeeded {probe.successes}/{probe.n} times "
            f"(S={probe.rate:.2f}, 95% [{low:.2f},{high:.2f}]); "
            + (
                f"from step {after}, {search.probes[decisive + 1].successes}/{search.probes[decisive + 1].n}"
                if after is not None
                else "as recorded it failed"
            )
            + f": step {pos.step}'s recorded output cost the run {drop:.2f}. "
            f"S(k) (step:successes/re-rolls [95% Wilson]): {measured}; {search.used} re-runs"
        )
    result.replays_used = search.used
    if save:
        store.update_run_metadata(
            run.id,
            {"reroll": {"curve": curve, "decisive_step": result.step,
                        "point_of_no_return": result.point_of_no_return, "replays": search.used,
                        "samples": samples, "temperature": temperature, "decided": result.decided}},
        )  # fmt: skip
        if result.decided:
            store.add_attribution(
                run.id,
                {"method": "reroll", "agent": result.agent, "step_index": result.step,
                 "confidence": result.confidence, "reason": result.reason,
                 "intervention": result.intervention, "verified": result.verified,
                 "replay_run_id": result.replay_run_id, "with_ground_truth": result.with_ground_truth,
                 "annotator": "replay:reroll"},
            )  # fmt: skip
    return result


__all__ = [
    "DEFAULT_MAX_REPLAYS",
    "DEFAULT_SAMPLES",
    "Position",
    "Probe",
    "aestimate",
    "areroll_attribute",
    "reroll_positions",
]
