"""A run in progress: records steps, keeps the conversation, takes turns, verifies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mascope._vocabulary import TRANSCRIPT_KINDS, StepKind, event_data
from mascope.agents import (
    Agent,
    TranscriptEntry,
    TurnContext,
    TurnResult,
    Verdict,
    Verifier,
    VerifyContext,
    current_refinement,
    current_sample,
    verdict_text,
)
from mascope.models import Message, TokenCallback
from mascope.traces import TraceStore

from ._events import AnswerStream, StepCallback, StepEvent, TokenEventCallback
from ._resolved import ResolvedTeam
from ._state import TeamState


class RunContext:
    """Everything a run needs that does not belong in the checkpointed state."""

    def __init__(
        self,
        team: ResolvedTeam,
        store: TraceStore,
        run_id: str,
        *,
        ground_truth: str | None,
        on_step: StepCallback | None,
        next_step: int = 0,
        on_token: TokenEventCallback | None = None,
    ):
        self.team = team
        self.store = store
        self.run_id = run_id
        self.ground_truth = ground_truth
        self.on_step = on_step
        self.on_token = on_token
        self._answers: dict[tuple[str, int | None], AnswerStream] = {}
        self.next_step = next_step
        self.transcript: list[TranscriptEntry] = []
        self.node: str | None = None
        self.checkpoint_id: str | None = None
        self.node_tokens = 0
        self.node_cost = 0.0
        self._truncated: set[str] = set()
        self._notes: dict[str, dict[str, Any]] = {}

    def load_transcript(self) -> None:
        """Rebuild the conversation cache from the store (on resume and fork)."""
        self.transcript = [
            TranscriptEntry(s.index, s.agent, s.kind, s.content)
            for s in self.store.iter_steps(self.run_id)
            if s.kind in TRANSCRIPT_KINDS
        ]
        self.next_step = self.store.count_steps(self.run_id)

    def begin_node(self, node: str, config: Mapping[str, Any]) -> None:
        configurable = config.get("configurable", {})
        self.node = node
        self.checkpoint_id = (configurable.get("checkpoint_map") or {}).get("") or configurable.get(
            "checkpoint_id"
        )
        self.node_tokens = 0
        self.node_cost = 0.0

    def record(
        self,
        *,
        agent: str,
        kind: StepKind,
        content: str = "",
        data: dict[str, Any] | None = None,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        latency_s: float | None = None,
        cost_usd: float | None = None,
        error: str | None = None,
        inputs: Sequence[Message | Mapping[str, Any]] | None = None,
    ) -> int:
        """Record one step of this run (and tell the live display)."""
        meta = dict(data or {})
        sample = current_sample()
        answer = self._answers.pop((agent, sample), None)
        if kind == "retry" and self.on_token is not None:
            # The call is tried again: what was shown of its answer is void, and the
            # next pieces belong to the next attempt.
            if answer is None:
                answer = AnswerStream(self.run_id, agent, sample, self.store.redact, self.on_token)
            answer.restart(content)
            self._answers[(agent, sample)] = answer
        elif answer is not None:
            answer.finish()  # the answer streamed so far is complete: its step follows
        if sample is not None:
            # Candidates drawn concurrently interleave their steps; each says whose it is.
            meta.setdefault("sample", sample)
        for key, value in current_refinement().items():
            meta.setdefault(key, value)  # review_refine: the round, and the candidate refined
        if kind == "message" and agent in self._notes:
            meta.update(self._notes.pop(agent))
        if self.node is not None:
            meta.setdefault("node", self.node)
            meta.setdefault("thread", self.run_id)
        index = self.store.append_step(
            self.run_id,
            agent=agent,
            kind=kind,
            content=content,
            data=meta,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_s=latency_s,
            cost_usd=cost_usd,
            checkpoint_id=self.checkpoint_id,
            error=error,
            inputs=inputs,
        )
        self.next_step = index + 1
        self.node_tokens += (input_tokens or 0) + (output_tokens or 0)
        self.node_cost += cost_usd or 0.0
        if kind in TRANSCRIPT_KINDS:
            self.transcript.append(TranscriptEntry(index, agent, kind, content))
        if self.on_step is not None:
            # Shown as it was stored: live displays print it, so secrets are masked here too.
            redact = self.store.redact
            self.on_step(
                StepEvent(
                    self.run_id,
                    index,
                    agent,
                    kind,
                    redact.text(content),
                    model,
                    input_tokens,
                    output_tokens,
                    latency_s,
                    redact.optional(error),
                    str(meta["event"]) if kind == "event" and meta.get("event") else None,
                )
            )
        return index

    def token_sink(self, agent: str) -> TokenCallback | None:
        """Pieces of `agent`'s answer go to `on_token` (masked), when it is set."""
        emit = self.on_token
        if emit is None:
            return None
        key = (agent, current_sample())

        def sink(piece: str) -> None:
            answer = self._answers.get(key)
            if answer is None:
                answer = self._answers[key] = AnswerStream(
                    self.run_id, agent, key[1], self.store.redact, emit
                )
            answer.add(piece)

        return sink

    # -- what nodes do ------------------------------------------------------

    async def turn(
        self,
        agent: Agent,
        state: TeamState,
        prompt: str,
        *,
        sample: int = 0,
        transcript: Sequence[TranscriptEntry] | None = None,
    ) -> TurnResult:
        team = self.team
        ctx = TurnContext(
            task=state["task"],
            agent=agent.name,
            prompt=prompt,
            transcript=self.transcript if transcript is None else transcript,
            outputs=state.get("outputs", {}),
            last_output=state.get("last_output"),
            feedback=state.get("feedback") if state.get("feedback_for") == agent.name else None,
            round=state.get("turns", 0),
            recorder=self,
            tools=team.tools,
            allowed_tools=frozenset(agent.spec.tools),
            team=team.name,
            teammates=tuple(team.agents),
            stop_phrase=team.spec.termination.stop_phrase,
            sample=sample,
        )
        model = None if agent.is_function else team.model_for(agent)
        return await agent.aturn(ctx, model)

    async def verify(
        self,
        name: str,
        verifier: Verifier,
        candidate: str,
        state: TeamState,
        outputs: Mapping[str, str] | None = None,
    ) -> Verdict:
        ctx = VerifyContext(
            task=state["task"],
            ground_truth=self.ground_truth,
            outputs=outputs or state.get("outputs", {}),
            recorder=self,
        )
        verdict = await verifier.averify(candidate, ctx)
        evidence = verdict.evidence or {}
        self.record(
            agent=name,
            kind="verdict",
            content=verdict_text(verdict),
            data={
                "passed": verdict.passed,
                "score": verdict.score,
                "verifier": verifier.kind,
                "evidence": evidence,
            },
            model=evidence.get("model") if isinstance(evidence.get("model"), str) else None,
            input_tokens=evidence.get("input_tokens")
            if isinstance(evidence.get("input_tokens"), int)
            else None,
            output_tokens=evidence.get("output_tokens")
            if isinstance(evidence.get("output_tokens"), int)
            else None,
            cost_usd=evidence.get("cost_usd")
            if isinstance(evidence.get("cost_usd"), int | float)
            else None,
        )
        return verdict

    def context_block(self, *, limit_chars: int, agent: str) -> str:
        """The recent conversation, newest last, within `limit_chars`; records
        an event when earlier messages had to be left out."""
        lines: list[str] = []
        used = 0
        dropped = 0
        for entry in reversed(self.transcript):
            text = (
                entry.content if len(entry.content) <= 2000 else entry.content[:2000] + " ...[cut]"
            )
            line = f"{entry.agent}: {text}"
            if used + len(line) > limit_chars and lines:
                dropped = len(self.transcript) - len(lines)
                break
            lines.append(line)
            used += len(line)
        if dropped:
            # One event when an agent first loses history; after that the count
            # rides on its messages (`context_dropped`), to keep the trace readable.
            self._notes[agent] = {"context_dropped": dropped}
            if agent not in self._truncated:
                self._truncated.add(agent)
                self.record(
                    agent=agent,
                    kind="event",
                    content=f"context truncated: {dropped} earlier message(s) left out of {agent}'s prompt from here on",
                    data=event_data("context_truncation", dropped=dropped),
                )
        return "\n\n".join(reversed(lines))
