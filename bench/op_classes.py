#!/usr/bin/env python3
"""Breaks a LibTorch chrome://tracing profile of training steps (bench_train_step --trace, or a
run's profile-rank0.json) down by op class: each op's self time (its time minus its children's)
is charged to one class, so the classes add up to the profiled time.

  bench/op_classes.py TRACE.json [--steps N]

Classes, first match wins: ops inside the user scopes that trainer::TrainStep and the model
open (agave::optimizer = Adamax + EMA, agave::allreduce = the gradient all-reduce left after
backward, agave::likelihood = the forward of both likelihoods), then by op name: convolutions
(forward and backward), casts and layout copies (to, _to_copy, copy_, contiguous, clone), and
everything else as element-wise and other (activations, gates, shifts, concatenations, the
likelihood's backward, autograd bookkeeping)."""
import argparse
import collections
import json
import re

SCOPES = {"agave::optimizer": "optimizer (Adamax + EMA)",
          "agave::allreduce": "gradient all-reduce (after backward)",
          "agave::likelihood": "likelihood (forward)"}
CONV = re.compile(r"conv", re.I)
CAST = re.compile(r"^(aten::)?(to|_to_copy|copy_|contiguous|clone|_copy_from|empty_strided|"
                  r"ToCopyBackward0|CloneBackward0)$")
PHASES = ("agave::forward", "agave::backward")


def events_of(path):
    with open(path) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    return [e for e in events if e.get("ph") == "X" and "dur" in e]


def classify(name, scopes):
    for s in scopes:
        if s in SCOPES:
            return SCOPES[s]
    if CONV.search(name):
        return "convolutions (forward + backward)"
    if CAST.match(name):
        return "casts and layout copies"
    return "element-wise and other"


def self_times(events):
    """(name, enclosing scope names, self time in us) for every event, nested by time per thread."""
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e.get("tid")].append(e)
    out = []
    for evs in by_thread.values():
        evs.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack = []  # [event, end, children time]
        def close(entry):
            e, _, child = entry
            out.append((e["name"], [s[0]["name"] for s in stack], float(e["dur"]) - child))
            if stack:
                stack[-1][2] += float(e["dur"])
        for e in evs:
            start = float(e["ts"])
            while stack and stack[-1][1] <= start:
                close(stack.pop())
            stack.append([e, start + float(e["dur"]), 0.0])
        while stack:
            close(stack.pop())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--steps", type=int, default=0, help="profiled steps, for ms per step")
    a = ap.parse_args()
    totals = collections.Counter()
    phase = collections.Counter()
    for name, scopes, self_us in self_times(events_of(a.trace)):
        if name in SCOPES or name in PHASES:
            continue  # a scope's own time is its children's, charged to them
        totals[classify(name, scopes)] += self_us
        phase[next((p for p in PHASES if p in scopes), "outside forward/backward")] += self_us
    whole = sum(totals.values())
    per = f" per step over {a.steps} steps" if a.steps else ""
    print(f"| op class | ms{per} | share |")
    print("|---|---:|---:|")
    for cls, us in totals.most_common():
        ms = us / 1000 / (a.steps or 1)
        print(f"| {cls} | {ms:.1f} | {100 * us / whole:.1f} % |")
    print(f"| total | {whole / 1000 / (a.steps or 1):.1f} | 100 % |")
    print()
    for p, us in phase.most_common():
        print(f"{p}: {100 * us / whole:.1f} %")


if __name__ == "__main__":
    main()
