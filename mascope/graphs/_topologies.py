"""Topologies compiled to LangGraph: pipeline, group chat, explicit graph.

Each node is split into `produce` (the work: a turn, a verification, a
choice, recorded as steps) and `apply` (a pure state update from what was
produced). Forks reuse `apply` with a replacement product, so a corrected
step flows through exactly the logic the original did.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from mascope._vocabulary import TerminationReason, event_data
from mascope.agents import (
    HUMAN,
    DrawPlan,
    Selection,
    TurnResult,
    Verdict,
    ask_human,
    human_verdict,
    plan_draws,
    recorded_chat,
    run_draft_defer,
    run_review_refine,
    run_strategy,
)
from mascope.errors import StructuredOutputError

from ._context import RunContext
from ._resolved import ResolvedTeam
from ._routing import choose
from ._spec import END as END_NAME
from ._spec import EdgeSpec, GraphSpec, GroupChatSpec, PipelineSpec, TerminationSpec
from ._state import TeamState

NodeKind = Literal["agent", "verifier", "select", "pause"]
AbstainReason = Literal["negative_utility", "no_candidate_passed"]


@dataclass
class AgentProduct:
    output: str
    final: bool = False
    verdict: Verdict | None = None
    abstained: AbstainReason | None = None
    """Why the stage gave no answer (see `_abstain`); the run then ends `abstained`."""


@dataclass
class NodeDef:
    name: str
    kind: NodeKind
    actor: str
    """The agent, verifier or manager whose step this node records."""
    produce: Callable[[TeamState, RunContext], Awaitable[Any]]
    apply: Callable[[TeamState, Any], dict[str, Any]]
    interrupt: Literal["before", "after"] | None = None
    """Pause for a person before or after this node (a stage's or graph node's `interrupt`)."""
    prompt: str | None = None
    """What the person is asked at that pause (default: where the run paused)."""


@dataclass
class Compiled:
    nodes: dict[str, NodeDef]
    wire: Callable[[StateGraph[Any]], None]


def stop_phrase_answer(text: str, phrase: str | None) -> str | None:
    if not phrase:
        return None
    idx = text.upper().find(phrase.upper())
    if idx < 0:
        return None
    return text[idx + len(phrase) :].strip() or text.strip()


def says_done(
    product: AgentProduct, term: TerminationSpec, *, phrase: bool = True
) -> tuple[TerminationReason, str] | None:
    """Whether an agent's turn says the work is done: how, and the answer it gives.

    The agent called the final-answer tool (when the team offers it), or its
    message contains the stop phrase (the answer is what follows it). A
    pipeline passes `phrase=False`: it ends after its last stage, whatever its
    agents write.
    """
    if product.final and term.final_answer_tool:
        return "final_answer", product.output
    answer = stop_phrase_answer(product.output, term.stop_phrase) if phrase else None
    return None if answer is None else ("stop_phrase", answer)


def _end(reason: TerminationReason, answer: str | None) -> dict[str, Any]:
    """The state update that ends the run."""
    return {"done": True, "termination": reason, "final_answer": answer}


def _with_output(state: TeamState, agent: str, output: str) -> dict[str, Any]:
    outputs = dict(state.get("outputs", {}))
    outputs[agent] = output
    return {
        "outputs": outputs,
        "last_output": output,
        "last_agent": agent,
        "turns": state.get("turns", 0) + 1,
    }


REJECTED = "it did not pass verification"
"""What a failed verdict that gave no feedback tells its agent."""


def verdict_feedback(verdict: Verdict, agent: str | None, *, relay: bool = False) -> dict[str, Any]:
    """The state update that tells `agent` what a verdict said of its answer.

    A pass clears the feedback; a failure tells `agent` the verifier's feedback
    (or that it did not pass). With `relay` (the group chat) the verdict's
    feedback goes to `agent` as it is, passed or not: a chat that goes on after
    a pass hears what the verifier said.
    """
    if relay:
        return {"feedback": verdict.feedback, "feedback_for": agent}
    if verdict.passed:
        return {"feedback": None, "feedback_for": None}
    return {"feedback": verdict.feedback or REJECTED, "feedback_for": agent}


def turn_prompt(state: TeamState, agent: str, context: str = "", *, ask: str = "") -> str:
    """The user message of `agent`'s turn, in every topology.

    The task, what the team said so far (`context`), the feedback on the
    agent's rejected answer if it has one, and what to do now (`ask`, by
    default "Now do your part as AGENT.").
    """
    prompt = f"Task: {state['task']}"
    if context:
        prompt += f"\n\n{context}"
    return f"{prompt}{_feedback_block(state, agent)}\n\n{ask or f'Now do your part as {agent}.'}"


def _feedback_block(state: TeamState, agent: str) -> str:
    if state.get("feedback_for") != agent or not state.get("feedback"):
        return ""
    previous = state.get("outputs", {}).get(agent, "")
    return (
        f"\n\nYour previous answer was:\n{previous}\n\nIt was rejected: {state['feedback']}\n"
        "Write a corrected answer."
    )


# -- pipeline ---------------------------------------------------------------------


def build_pipeline(team: ResolvedTeam, top: PipelineSpec) -> Compiled:
    stages = top.stage_list()
    agents = [s.agent for s in stages]
    nodes: dict[str, NodeDef] = {}
    term = team.spec.termination

    def agent_node(i: int) -> str:
        return f"stage{i}.{stages[i].agent}"

    def verify_node(i: int) -> str:
        return f"verify{i}.{stages[i].verifier}"

    def after_verdict(state: TeamState, i: int, verdict: Verdict, candidate: str) -> dict[str, Any]:
        stage = stages[i]
        key = str(i)
        attempts = dict(state.get("attempts", {}))
        attempts[key] = attempts.get(key, 0) + 1
        update: dict[str, Any] = {"attempts": attempts, "verdict": verdict.model_dump()}
        if verdict.passed:
            update.update(verdict_feedback(verdict, None))
            if i + 1 == len(stages):
                update.update(_end("verifier_passed", candidate))
            else:
                update["stage"] = i + 1
        elif attempts[key] < stage.max_rounds:
            retry = stage.retry_from or stage.agent
            update.update(verdict_feedback(verdict, retry), stage=agents.index(retry))
        else:
            update.update(_end("verifier_failed", candidate))
        return update

    for i, stage in enumerate(stages):
        agent = team.agents[stage.agent]
        verifier = team.verifiers.get(stage.verifier) if stage.verifier else None
        single = stage.strategy.kind == "single"

        def make_produce(
            i: int = i, agent: Any = agent, verifier: Any = verifier, stage: Any = stage
        ) -> Callable[[TeamState, RunContext], Awaitable[AgentProduct]]:
            async def produce(state: TeamState, run: RunContext) -> AgentProduct:
                earlier = [
                    f"{name} said:\n{state.get('outputs', {}).get(name, '')}"
                    for name in dict.fromkeys(agents[:i])
                    if name != agent.name and name in state.get("outputs", {})
                ]
                if HUMAN in state.get("outputs", {}):  # a person's latest reply at a pause
                    earlier.append(f"{HUMAN} said:\n{state['outputs'][HUMAN]}")
                context = "\n\n".join(earlier)
                if len(context) > team.spec.context_chars:
                    context = context[-team.spec.context_chars :]
                    run.record(
                        agent=agent.name,
                        kind="event",
                        content=f"context truncated to the last {team.spec.context_chars} characters for {agent.name}",
                        data=event_data("context_truncation"),
                    )
                prompt = turn_prompt(state, agent.name, context)
                if stage.strategy.kind == "single":
                    turn = await run.turn(agent, state, prompt)
                    return AgentProduct(turn.output, turn.final)
                if stage.strategy.kind == "draft_defer":
                    return await _draft_defer(team, run, state, prompt, stage, agent, verifier)

                # Candidates are independent: each sees the conversation as it was
                # before the first draw, not the other candidates' messages.
                history = list(run.transcript)

                async def draw(sample: int) -> Any:
                    return await run.turn(agent, state, prompt, sample=sample, transcript=history)

                async def check(candidate: str) -> Verdict:
                    outputs = {**state.get("outputs", {}), agent.name: candidate}
                    return await run.verify(stage.verifier, verifier, candidate, state, outputs)

                if stage.strategy.kind == "review_refine":
                    return await _review_refine(
                        run, agent, stage, state, context, history, draw, check
                    )
                strategy, plan = stage.strategy, None
                if strategy.penalty is not None:
                    plan = plan_draws(
                        team.stage_rates[i], max_n=strategy.n, penalty=strategy.penalty,
                        sample_cost=strategy.sample_cost,
                    )  # fmt: skip
                    if plan.abstain:
                        return _abstain(run, agent.name, "negative_utility", plan, strategy.penalty)
                    strategy = strategy.model_copy(update={"n": plan.n})
                    run.record(
                        agent=agent.name,
                        kind="event",
                        content=f"{strategy.kind}: drawing up to {plan.n} of {stage.strategy.n} "
                        f"(expected utility {plan.utility:.3f} at penalty {strategy.penalty})",
                        data=event_data("draw_plan", n=plan.n, expected_utility=plan.utility,
                                        fpr=plan.fpr, fnr=plan.fnr, base_rate=plan.base_rate),
                    )  # fmt: skip
                chosen = await run_strategy(strategy, draw, check if verifier is not None else None)
                run.record(
                    agent=agent.name,
                    kind="event",
                    content=f"{stage.strategy.kind}: chose candidate {chosen.index + 1}, "
                    f"{chosen.samples_used} of {stage.strategy.n} used"
                    + _how_it_stopped(chosen, "settled early", "samples"),
                    data=event_data(
                        "selection",
                        strategy=stage.strategy.kind,
                        chosen=chosen.index,
                        votes=chosen.votes,
                        samples_used=chosen.samples_used,
                        samples=chosen.samples,
                        settled=chosen.settled,
                        dropped=chosen.dropped,
                    ),
                )
                if plan is not None and not (chosen.verdict is not None and chosen.verdict.passed):
                    return _abstain(run, agent.name, "no_candidate_passed", plan, strategy.penalty)
                return AgentProduct(chosen.output, chosen.final, chosen.verdict)

            return produce

        def make_apply(
            i: int = i,
            agent_name: str = stage.agent,
            verifier: Any = verifier,
            single: bool = single,
        ) -> Callable[[TeamState, Any], dict[str, Any]]:
            def apply(state: TeamState, product: AgentProduct) -> dict[str, Any]:
                if product.abstained:
                    return {"turns": state.get("turns", 0) + 1, **_end("abstained", None)}
                update = _with_output(state, agent_name, product.output)
                claim = says_done(product, term, phrase=False)
                if claim is not None:
                    return {**update, **_end(*claim)}
                if verifier is not None and not single and product.verdict is not None:
                    merged = {**state, **update}
                    return {**update, **after_verdict(merged, i, product.verdict, product.output)}  # type: ignore[arg-type]
                if verifier is not None and single:
                    return update  # the verifier node comes next
                if i + 1 == len(stages):
                    return {**update, **_end("end", product.output)}
                return {**update, "stage": i + 1, "feedback": None, "feedback_for": None}

            return apply

        nodes[agent_node(i)] = NodeDef(
            agent_node(i), "agent", stage.agent, make_produce(), make_apply(),
            stage.interrupt, stage.prompt,
        )  # fmt: skip
        if verifier is not None and single:

            def make_vproduce(
                i: int = i, verifier: Any = verifier, name: str = stage.verifier or ""
            ) -> Callable[[TeamState, RunContext], Awaitable[Verdict]]:
                async def produce(state: TeamState, run: RunContext) -> Verdict:
                    return await run.verify(name, verifier, state.get("last_output", ""), state)

                return produce

            def make_vapply(i: int = i) -> Callable[[TeamState, Any], dict[str, Any]]:
                def apply(state: TeamState, verdict: Verdict) -> dict[str, Any]:
                    update = after_verdict(state, i, verdict, state.get("last_output", ""))
                    update["turns"] = state.get("turns", 0) + 1
                    return update

                return apply

            nodes[verify_node(i)] = NodeDef(
                verify_node(i), "verifier", stage.verifier or "", make_vproduce(), make_vapply()
            )

    def wire(graph: StateGraph[Any]) -> None:
        graph.add_edge(START, agent_node(0))
        targets = {agent_node(j): agent_node(j) for j in range(len(stages))}
        targets[END] = END  # type: ignore[index]
        for i, _stage in enumerate(stages):
            if verify_node(i) in nodes:
                graph.add_conditional_edges(
                    agent_node(i),
                    lambda s, i=i: END if s.get("done") else verify_node(i),
                    {verify_node(i): verify_node(i), END: END},
                )
                graph.add_conditional_edges(
                    verify_node(i),
                    lambda s: END if s.get("done") else agent_node(s["stage"]),
                    cast(Any, targets),
                )
            else:
                graph.add_conditional_edges(
                    agent_node(i),
                    lambda s: END if s.get("done") else agent_node(s["stage"]),
                    cast(Any, targets),
                )

    return Compiled(nodes, wire)


async def _review_refine(
    run: RunContext,
    agent: Any,
    stage: Any,
    state: TeamState,
    context: str,
    history: list[Any],
    draw: Callable[[int], Awaitable[Any]],
    check: Callable[[str], Awaitable[Verdict]],
) -> AgentProduct:
    """A review_refine stage: draw, verify, refine the best on their feedback; record the choice."""
    spec = stage.strategy

    async def refine(sample: int, candidate: str, verdict: Verdict) -> Any:
        # The candidate and its feedback reach the agent the way any rejected answer
        # does: the same prompt block and the same turn fields, nothing spliced in apart.
        shown = cast(
            TeamState,
            {
                **state,
                "outputs": {**state.get("outputs", {}), agent.name: candidate},
                "feedback": _refine_feedback(verdict),
                "feedback_for": agent.name,
            },
        )
        prompt = turn_prompt(shown, agent.name, context)
        return await run.turn(agent, shown, prompt, sample=sample, transcript=history)

    chosen = await run_review_refine(spec, draw, check, refine)
    round_, parent = chosen.lineage[chosen.index]
    where = (
        "a first draft" if parent is None else f"round {round_}, refining candidate {parent + 1}"
    )
    candidates = [
        {
            "sample": i,
            "round": chosen.lineage[i][0],
            "parent": chosen.lineage[i][1],
            "passed": v.passed,
            "score": v.score,
        }
        for i, v in zip(chosen.samples, chosen.verdicts, strict=True)
    ]
    run.record(
        agent=agent.name,
        kind="event",
        content=f"review_refine: chose candidate {chosen.index + 1} ({where}) after "
        f"{chosen.rounds} of {chosen.max_rounds} round(s), {chosen.samples_used} candidates"
        + _how_it_stopped(chosen, "passed with full score", "candidates"),
        data=event_data(
            "selection",
            strategy="review_refine",
            chosen=chosen.index,
            winner=candidates[chosen.samples.index(chosen.index)],
            rounds=chosen.rounds,
            votes={},
            samples_used=chosen.samples_used,
            samples=chosen.samples,
            settled=chosen.settled,
            dropped=chosen.dropped,
            candidates=candidates,
        ),
    )
    return AgentProduct(chosen.output, chosen.final, chosen.verdict)


def _how_it_stopped(chosen: Selection, settled: str, noun: str) -> str:
    """The end of a selection event's text: why drawing stopped early and what was left out."""
    left_out = ", ".join(str(i + 1) for i in chosen.dropped)
    return (
        (f" ({settled})" if chosen.settled else "")
        + (" (budget ran out)" if chosen.stopped_by_budget else "")
        + (f"; {noun} {left_out} left out" if chosen.dropped else "")
    )


def _refine_feedback(verdict: Verdict) -> str:
    """What a kept candidate is told to fix: its verifier's feedback, or why a pass is not enough."""
    if not verdict.passed:
        return verdict.feedback or REJECTED
    points = verdict.score if verdict.score is not None else 1.0
    score = f"it scored {points:g} of 1, short of full marks"  # a full pass ends the search
    return f"{score}; {verdict.feedback}" if verdict.feedback else score


async def _draft_defer(
    team: ResolvedTeam,
    run: RunContext,
    state: TeamState,
    prompt: str,
    stage: Any,
    agent: Any,
    verifier: Any,
) -> AgentProduct:
    """The drafter answers the stage's prompt; below tau the stage's own agent answers instead.

    The strong agent answers the same prompt from the conversation as it was
    before the draft: it replaces the draft rather than correcting it.
    """
    drafter = team.agents[stage.strategy.drafter]
    history = list(run.transcript)

    async def check(candidate: str) -> Verdict:
        # The draft stands in for the stage agent's answer, so a verifier reading
        # `outputs` (code_from, tests_from) finds it under the stage agent's name.
        outputs = {**state.get("outputs", {}), agent.name: candidate}
        return await run.verify(stage.verifier, verifier, candidate, state, outputs)

    async def draft() -> TurnResult:
        return await run.turn(drafter, state, prompt, transcript=history)

    async def strong() -> TurnResult:
        return await run.turn(agent, state, prompt, transcript=history)

    got = await run_draft_defer(stage.strategy, draft, strong, check)
    d_tokens = got.draft.input_tokens + got.draft.output_tokens
    s_tokens = got.strong.input_tokens + got.strong.output_tokens if got.strong else 0
    s_cost = got.strong.cost_usd if got.strong else 0.0
    # The decision first: live displays cut a step's line at the terminal's width.
    run.record(
        agent=agent.name,
        kind="event",
        content=(
            f"deferred to {agent.name}: {drafter.name}'s draft scored {got.score:g} < tau {got.tau:g}; "
            f"extra {s_tokens} tokens, ${s_cost:.6f}"
            if got.deferred
            else f"kept {drafter.name}'s draft: scored {got.score:g} >= tau {got.tau:g}; {agent.name} not asked"
        ),
        data=event_data(
            "deferral",
            strategy="draft_defer",
            drafter=drafter.name,
            strong=agent.name,
            # Where each answer is, so a calibration can score them against a ground truth.
            draft_step=got.draft.message_step,
            strong_step=got.strong.message_step if got.strong else None,
            score=got.score,
            tau=got.tau,
            deferred=got.deferred,
            draft_tokens=d_tokens,
            draft_cost_usd=got.draft.cost_usd,
            strong_tokens=s_tokens,
            strong_cost_usd=s_cost,
        ),
    )
    return AgentProduct(got.chosen.output, got.chosen.final, got.verdict)


def _abstain(
    run: RunContext, agent: str, reason: AbstainReason, plan: DrawPlan, penalty: float | None
) -> AgentProduct:
    """Record why a calibrated stage gives no answer, and say so to the run."""
    why = (
        f"answering does not pay: expected utility {plan.utility:.3f} < 0 at the best n={plan.n}"
        if reason == "negative_utility"
        else f"no candidate of {plan.n} passed the verifier"
    )
    run.record(
        agent=agent,
        kind="event",
        content=f"abstained: {why} (FPR {plan.fpr:.2f}, FNR {plan.fnr:.2f}, base rate {plan.base_rate:.2f}, penalty {penalty})",
        data=event_data(
            "abstained", reason=reason, n=plan.n, expected_utility=plan.utility,
            fpr=plan.fpr, fnr=plan.fnr, base_rate=plan.base_rate, penalty=penalty,
        ),
    )  # fmt: skip
    return AgentProduct("", abstained=reason)


# -- group chat -------------------------------------------------------------------


class _Choice(BaseModel):
    next_speaker: str
    reason: str = ""


MANAGER_REASON_CHARS = 160


def _manager_max_tokens(names: list[str]) -> int:
    """Room for the longest choice the schema allows (a token is at least one
    character), so a grammar-constrained answer cannot be cut off."""
    return MANAGER_REASON_CHARS + max(len(n) for n in names) + 60


def _choice_schema(names: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "next_speaker": {"type": "string", "enum": names},
            "reason": {"type": "string", "maxLength": MANAGER_REASON_CHARS},
        },
        "required": ["next_speaker"],
    }


def build_group_chat(team: ResolvedTeam, top: GroupChatSpec) -> Compiled:
    names = list(top.agents)
    term = team.spec.termination
    verifier = team.verifiers.get(top.verifier) if top.verifier else None
    nodes: dict[str, NodeDef] = {}

    async def select(state: TeamState, run: RunContext) -> str:
        if top.speaker_selection == "round_robin":
            return names[state.get("spoken", 0) % len(names)]
        manager = team.agents[top.manager or ""]
        history = run.context_block(limit_chars=team.spec.context_chars // 2, agent=manager.name)
        prompt = (
            f"Task: {state['task']}\n\nConversation so far:\n{history or '(nothing yet)'}\n\n"
            f"Who should speak next? Choose one of: {', '.join(names)}."
        )
        if manager.is_function:
            turn = await run.turn(manager, state, prompt)
            choice = turn.output.strip()
        else:
            model = team.model_for(manager)
            messages = [
                {
                    "role": "system",
                    "content": f"You are {manager.name}, who manages the team's conversation.",
                },
                {"role": "user", "content": prompt},
            ]
            try:
                reply = await recorded_chat(
                    model,
                    messages,
                    recorder=run,
                    agent=manager.name,
                    output=_choice_schema(names),
                    temperature=manager.spec.temperature,
                    max_tokens=_manager_max_tokens(names),
                )
            except StructuredOutputError as exc:
                # The documented rule: an unusable choice falls back to round robin.
                fallback = names[state.get("spoken", 0) % len(names)]
                reason = (
                    f"the group chat manager {manager.name!r} asked {model.model_id} for the next "
                    f'speaker as JSON {{"next_speaker": one of {names}}} but could not use its '
                    f"answer even after one repair: {exc.reason or exc}"
                )
                run.record(
                    agent=manager.name, kind="model_call", content=exc.last_answer, model=model.model_id,
                    data={"event": "unusable_answer", "asked_for": "next speaker JSON", "finish_reason": exc.finish_reason},
                    input_tokens=exc.input_tokens, output_tokens=exc.output_tokens, error=reason, inputs=messages,
                )  # fmt: skip
                run.record(
                    agent=manager.name,
                    kind="event",
                    content=f"manager's choice unusable; round robin: {fallback} speaks",
                    data={"event": "manager_fallback", "selected": fallback},
                )
                return fallback
            parsed = _Choice.model_validate(reply.parsed)
            choice = parsed.next_speaker
            run.record(
                agent=manager.name, kind="message", content=f"next speaker: {choice}" + (f" ({parsed.reason})" if parsed.reason else ""),
                data={"selected": choice}, model=model.model_id, input_tokens=reply.usage.input_tokens,
                output_tokens=reply.usage.output_tokens, latency_s=reply.latency_s, cost_usd=reply.cost_usd,
                inputs=messages,
            )  # fmt: skip
        if choice not in names:
            fallback = names[state.get("spoken", 0) % len(names)]
            run.record(
                agent=manager.name,
                kind="event",
                content=f"manager chose {choice!r}, not a speaker; {fallback} speaks",
                data={"event": "invalid_speaker"},
            )
            choice = fallback
        return choice

    def apply_select(state: TeamState, speaker: str) -> dict[str, Any]:
        return {"speaker": speaker if speaker in names else names[0]}

    def finish(reason: TerminationReason, answer: str) -> dict[str, Any]:
        """End the chat with `answer`, or (`interrupt: final`) first ask a person to approve it."""
        if top.interrupt == "final":
            return {"awaiting_person": {"answer": answer, "reason": reason}}
        return _end(reason, answer)

    if top.interrupt is not None:
        nodes["human"] = _chat_pause(top, len(names), term)

    managed = top.speaker_selection == "manager"
    if managed:  # round robin needs no node: the router picks the next speaker
        nodes["select"] = NodeDef("select", "select", top.manager or "", select, apply_select)

    for name in names:
        agent = team.agents[name]

        def make_produce(
            agent: Any = agent,
        ) -> Callable[[TeamState, RunContext], Awaitable[AgentProduct]]:
            async def produce(state: TeamState, run: RunContext) -> AgentProduct:
                history = run.context_block(limit_chars=team.spec.context_chars, agent=agent.name)
                context = f"Conversation so far:\n{history or '(you speak first)'}"
                prompt = turn_prompt(state, agent.name, context, ask=f"Your turn, {agent.name}.")
                turn = await run.turn(agent, state, prompt)
                return AgentProduct(turn.output, turn.final)

            return produce

        def make_apply(name: str = name) -> Callable[[TeamState, Any], dict[str, Any]]:
            def apply(state: TeamState, product: AgentProduct) -> dict[str, Any]:
                update = _with_output(state, name, product.output)
                spoken = state.get("spoken", 0) + 1
                update["spoken"] = spoken
                claim = says_done(product, term)
                if claim is not None:
                    if verifier is not None:
                        return {**update, "pending_final": claim[1]}
                    return {**update, **finish(*claim)}
                if term.max_rounds is not None and spoken >= term.max_rounds * len(names):
                    return {**update, **_end("max_rounds", product.output)}
                return update

            return apply

        nodes[f"agent.{name}"] = NodeDef(
            f"agent.{name}", "agent", name, make_produce(), make_apply()
        )

    if verifier is not None:

        async def vproduce(state: TeamState, run: RunContext) -> Verdict:
            return await run.verify(
                top.verifier or "", verifier, state.get("pending_final") or "", state
            )

        def vapply(state: TeamState, verdict: Verdict) -> dict[str, Any]:
            claimed = state.get("pending_final") or ""
            update: dict[str, Any] = {
                "verdict": verdict.model_dump(),
                "pending_final": None,
                "turns": state.get("turns", 0) + 1,
            }
            if verdict.passed and term.verifier_pass:
                return {**update, **finish("verifier_passed", claimed)}
            update.update(verdict_feedback(verdict, state.get("last_agent"), relay=True))
            if term.max_rounds is not None and state.get("spoken", 0) >= term.max_rounds * len(
                names
            ):
                update.update(_end("max_rounds", claimed))
            return update

        nodes["verify"] = NodeDef("verify", "verifier", top.verifier or "", vproduce, vapply)

    def next_speaker(state: TeamState) -> str:
        if state.get("done"):
            return END
        if managed:
            return "select"
        return f"agent.{names[state.get('spoken', 0) % len(names)]}"

    def after_turn(state: TeamState) -> str:
        """Where the chat goes after an agent's turn or a verdict."""
        if state.get("done"):
            return END
        if state.get("pending_final") is not None:
            return "verify"
        if state.get("awaiting_person") is not None:
            return "human"
        if top.interrupt == "round" and state.get("spoken", 0) % len(names) == 0:
            return "human"
        return next_speaker(state)

    def wire(graph: StateGraph[Any]) -> None:
        speakers: dict[str, str] = {f"agent.{n}": f"agent.{n}" for n in names}
        step_targets = (
            {**speakers, "select": "select", END: END} if managed else {**speakers, END: END}
        )
        graph.add_conditional_edges(START, next_speaker, cast(Any, step_targets))
        if managed:
            graph.add_conditional_edges(
                "select",
                lambda s: END if s.get("done") else f"agent.{s['speaker']}",
                cast(Any, {**speakers, END: END}),
            )
        after = dict(step_targets)
        if "human" in nodes:
            after["human"] = "human"
            graph.add_conditional_edges("human", next_speaker, cast(Any, step_targets))
        if "verify" in nodes:
            after["verify"] = "verify"
            graph.add_conditional_edges("verify", after_turn, cast(Any, after))
        for n in names:
            graph.add_conditional_edges(f"agent.{n}", after_turn, cast(Any, after))

    return Compiled(nodes, wire)


def _chat_pause(top: GroupChatSpec, speakers: int, term: TerminationSpec) -> NodeDef:
    """A group chat's pause for a person (`interrupt: round` or `final`).

    After a round the reply joins the conversation as a message of `human`.
    At a final answer the reply is a verdict: approval ends the run with the
    answer; anything else is feedback to the agent that claimed it, and the
    chat goes on (unless its rounds are used up).
    """

    async def produce(state: TeamState, run: RunContext) -> str:
        waiting = state.get("awaiting_person")
        if waiting is not None:
            question = top.prompt or "Accept this final answer? Reply yes, or no and what to fix."
            return ask_human(f"{question}\n\nFinal answer:\n{waiting['answer']}")
        rounds = state.get("spoken", 0) // speakers
        return ask_human(
            top.prompt
            or f"Round {rounds} of the chat is over. Reply to continue; every agent sees your reply."
        )

    def apply(state: TeamState, answer: str) -> dict[str, Any]:
        update: dict[str, Any] = {"outputs": {**state.get("outputs", {}), HUMAN: answer}}
        waiting = state.get("awaiting_person")
        if waiting is None:
            return update
        update["awaiting_person"] = None
        verdict = human_verdict(answer)
        if verdict.passed:
            return {**update, **_end(waiting["reason"], waiting["answer"])}
        update.update(verdict_feedback(verdict, state.get("last_agent"), relay=True))
        if term.max_rounds is not None and state.get("spoken", 0) >= term.max_rounds * speakers:
            update.update(_end("max_rounds", waiting["answer"]))
        return update

    return NodeDef("human", "pause", "runtime", produce, apply)


# -- explicit graph ---------------------------------------------------------------------


def build_graph(team: ResolvedTeam, top: GraphSpec) -> Compiled:
    nodes: dict[str, NodeDef] = {}
    term = team.spec.termination
    for spec in top.nodes:
        if spec.agent is not None:
            agent = team.agents[spec.agent]

            def make_produce(
                agent: Any = agent,
            ) -> Callable[[TeamState, RunContext], Awaitable[AgentProduct]]:
                async def produce(state: TeamState, run: RunContext) -> AgentProduct:
                    history = run.context_block(
                        limit_chars=team.spec.context_chars, agent=agent.name
                    )
                    context = f"Conversation so far:\n{history}" if history else ""
                    prompt = turn_prompt(state, agent.name, context)
                    turn = await run.turn(agent, state, prompt)
                    return AgentProduct(turn.output, turn.final)

                return produce

            def make_apply(name: str = spec.agent) -> Callable[[TeamState, Any], dict[str, Any]]:
                def apply(state: TeamState, product: AgentProduct) -> dict[str, Any]:
                    update = _with_output(state, name, product.output)
                    if state.get("feedback_for") == name:
                        update.update(feedback=None, feedback_for=None)
                    claim = says_done(product, term)
                    if claim is not None:
                        return {**update, **_end(*claim)}
                    return update

                return apply

            nodes[spec.name] = NodeDef(
                spec.name, "agent", spec.agent, make_produce(), make_apply(),
                spec.interrupt, spec.prompt,
            )  # fmt: skip
        else:
            verifier = team.verifiers[spec.verifier or ""]

            def make_vproduce(
                verifier: Any = verifier, spec: Any = spec
            ) -> Callable[[TeamState, RunContext], Awaitable[Verdict]]:
                async def produce(state: TeamState, run: RunContext) -> Verdict:
                    candidate = (
                        state.get("outputs", {}).get(spec.candidate_from, "")
                        if spec.candidate_from
                        else state.get("last_output", "")
                    )
                    return await run.verify(spec.verifier, verifier, candidate, state)

                return produce

            def make_vapply(spec: Any = spec) -> Callable[[TeamState, Any], dict[str, Any]]:
                def apply(state: TeamState, verdict: Verdict) -> dict[str, Any]:
                    attempts = dict(state.get("attempts", {}))
                    attempts[spec.name] = attempts.get(spec.name, 0) + 1
                    target = spec.candidate_from or state.get("last_agent")
                    update: dict[str, Any] = {
                        "verdict": verdict.model_dump(),
                        "attempts": attempts,
                        "turns": state.get("turns", 0) + 1,
                    }
                    update.update(verdict_feedback(verdict, target))
                    return update

                return apply

            nodes[spec.name] = NodeDef(
                spec.name, "verifier", spec.verifier or "", make_vproduce(), make_vapply(),
                spec.interrupt, spec.prompt,
            )  # fmt: skip

    by_source: dict[str, list[tuple[int, EdgeSpec]]] = {}
    sources: dict[str, set[str]] = {}
    for i, e in enumerate(top.edges):
        by_source.setdefault(e.from_, []).append((i, e))
        if e.to is not None:  # a router's targets are known only when it runs
            sources.setdefault(e.to, set()).add(e.from_)
    # A node with edges from two or more nodes joins branches: it waits until
    # nothing else is scheduled, so it runs once, after every branch into it.
    joins = {n for n, froms in sources.items() if len(froms) > 1}

    def holds(e: EdgeSpec, state: TeamState, name: str) -> bool:
        if e.when == "always" or e.router_path is not None:
            return True
        if e.when in ("passed", "failed"):
            verdict = state.get("verdict") or {}
            return bool(verdict.get("passed")) == (e.when == "passed")
        text = state.get("last_output", "") if state.get("last_agent") == nodes[name].actor else ""
        return e.when[len("contains:") :].lower() in text.lower()

    def fired(name: str, state: TeamState) -> list[str]:
        """The first edge whose condition holds decides; every edge of the node with
        that same condition fires (two `always` edges fan out to both targets)."""
        edges = by_source.get(name, [])
        first = next(((i, e) for i, e in edges if holds(e, state, name)), None)
        if first is None:
            return []
        i, edge = first
        if edge.router_path is not None:
            # The router decides alone (check_team refuses edges after it).
            chosen = choose(team.routers[i], state, name, nodes)
            return [] if chosen is None else [chosen]
        return [e.to for _, e in edges if e.when == edge.when and e.to is not None]

    def scheduled(
        name: str, apply: Callable[[TeamState, Any], dict[str, Any]]
    ) -> Callable[[TeamState, Any], dict[str, Any]]:
        def apply_and_schedule(state: TeamState, product: Any) -> dict[str, Any]:
            update = apply(state, product)
            after = cast(TeamState, {**state, **update})
            pending = state.get("frontier")
            # No frontier yet: the first node (or a run checkpointed before frontiers).
            frontier = [name] if pending is None else list(pending)
            if name in frontier:
                frontier.remove(name)
            # A finished run goes nowhere: its routers are not asked.
            for target in [] if after.get("done") else fired(name, after):
                if target != END_NAME and target not in frontier:
                    frontier.append(target)
            update["frontier"] = frontier
            if not frontier and not after.get("done"):
                outputs = after.get("outputs", {})
                answer = outputs.get(top.final) if top.final else after.get("last_output")
                update.update(_end("end", answer))
            return update

        return apply_and_schedule

    for name, node in nodes.items():
        node.apply = scheduled(name, node.apply)

    def route(state: TeamState) -> str:
        """Nodes run one at a time in the order they were scheduled (breadth first);
        a join runs when nothing but joins is left."""
        frontier = state.get("frontier") or []
        if state.get("done") or not frontier:
            return END
        return next((n for n in frontier if n not in joins), frontier[0])

    def wire(graph: StateGraph[Any]) -> None:
        graph.add_edge(START, top.start)
        for name in nodes:
            graph.add_conditional_edges(name, route, cast(Any, {**{n: n for n in nodes}, END: END}))

    return Compiled(nodes, wire)
