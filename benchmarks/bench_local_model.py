"""The embedded model on this machine: load time, time to first token, tokens/s.

Each figure is the median of several runs, for mascope's `local` backend and,
side by side, for llama-cpp-python called directly (the baseline), so the
ratio shows what mascope's layer costs. Load time is measured in a fresh
process each run, since a process loads a model only once.

    .venv/bin/python benchmarks/bench_local_model.py [--runs 7] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import machine, median, write_section

PROMPT = "Explain in a short paragraph why the sky is blue."
MAX_TOKENS = 128

LOAD_MASCOPE = """
import time
t = time.perf_counter()
from mascope.models import LocalModel
LocalModel().load()
print(time.perf_counter() - t)
"""
LOAD_RAW = """
import time
t = time.perf_counter()
from llama_cpp import Llama
from mascope.models import embedded_model_path
import os
Llama(model_path=str(embedded_model_path()), n_ctx=4096, n_threads=os.cpu_count(), verbose=False)
print(time.perf_counter() - t)
"""


def prompt(run: int) -> str:
    # A different prompt each run, so llama.cpp cannot reuse the last run's
    # evaluated prompt and the first-token time includes prompt processing.
    return f"{PROMPT} (Question {run + 1}.)"


def load_time(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def mascope_generation(runs: int) -> tuple[list[float], list[float]]:
    from mascope.models import LocalModel

    model = LocalModel()
    model.load()
    ttfts, rates = [], []
    for i in range(runs):
        started = time.perf_counter()
        stream = model.stream(prompt(i), max_tokens=MAX_TOKENS, temperature=0, seed=i)
        next(stream)
        ttfts.append(time.perf_counter() - started)
        for _ in stream:
            pass
        reply = model.chat(prompt(i), max_tokens=MAX_TOKENS, temperature=0, seed=i)
        rates.append(reply.usage.output_tokens / reply.latency_s)
    return ttfts, rates


def raw_generation(runs: int) -> tuple[list[float], list[float]]:
    from llama_cpp import Llama

    from mascope.models import embedded_model_path

    # Same thread count as mascope (llama-cpp-python's own default is half the cores).
    llama = Llama(
        model_path=str(embedded_model_path()), n_ctx=4096, n_threads=os.cpu_count(), verbose=False
    )
    ttfts, rates = [], []
    for i in range(runs):
        messages = [{"role": "user", "content": prompt(i)}]
        started = time.perf_counter()
        chunks = llama.create_chat_completion(
            messages=messages,
            max_tokens=MAX_TOKENS,
            temperature=0,
            seed=i,
            repeat_penalty=1.1,
            stream=True,
        )
        for chunk in chunks:
            if chunk["choices"][0].get("delta", {}).get("content"):
                ttfts.append(time.perf_counter() - started)
                break
        for _ in chunks:
            pass
        started = time.perf_counter()
        out = llama.create_chat_completion(
            messages=messages, max_tokens=MAX_TOKENS, temperature=0, seed=i, repeat_penalty=1.1
        )
        rates.append(out["usage"]["completion_tokens"] / (time.perf_counter() - started))
    return ttfts, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write", type=Path, help="update this markdown file's section")
    args = parser.parse_args()

    load_m = [load_time(LOAD_MASCOPE) for _ in range(args.runs)]
    load_r = [load_time(LOAD_RAW) for _ in range(args.runs)]
    ttft_m, rate_m = mascope_generation(args.runs)
    ttft_r, rate_r = raw_generation(args.runs)

    rows = [
        ("load (fresh process, incl. imports), s", median(load_m), median(load_r)),
        ("time to first token, s", median(ttft_m), median(ttft_r)),
        (f"tokens/s ({MAX_TOKENS}-token answer, whole call)", median(rate_m), median(rate_r)),
    ]
    result = {name: {"mascope": m, "llama_cpp": r, "ratio": m / r} for name, m, r in rows}
    print(json.dumps(result, indent=2))
    if args.write:
        lines = [
            "## Embedded model (SmolLM2-135M-Instruct Q4_1, llama-cpp-python)",
            "",
            f'Median of {args.runs} runs on {machine()}; prompt: "{PROMPT}", '
            f"temperature 0, at most {MAX_TOKENS} tokens. Baseline: llama-cpp-python called "
            "directly with the same settings and thread count; ratio = mascope / baseline. "
            "Each run asks a slightly different question, so time to first token includes "
            "evaluating the prompt; tokens/s is measured on a second call with the same "
            "question (prompt cached), so it is mostly decoding speed.",
            "",
            "| measure | mascope `local` | llama-cpp-python | ratio |",
            "| --- | ---: | ---: | ---: |",
        ]
        for name, m, r in rows:
            lines.append(f"| {name} | {m:.3f} | {r:.3f} | {m / r:.2f} |")
        lines += [
            "",
            "Reproduce: `.venv/bin/python benchmarks/bench_local_model.py --write docs/benchmarks.md`",
        ]
        write_section(args.write, "local-model", "\n".join(lines))


if __name__ == "__main__":
    main()
