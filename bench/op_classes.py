#!/usr/bin/env python3
"""Breaks a LibTorch chrome://tracing profile of training steps (bench_train_step --trace, or a
run's profile-rank0.json) down by op class: each op's self time (its time minus its children's)
is charged to one class, so the classes add up to the profiled time.

  bench/op_classes.py TRACE.json [--steps N]

Classes, first match wins: ops inside the user scopes that trainer::TrainStep and the model
open (agave::optimizer = Adamax + EMA, agave::allreduce = the gradient all-reduce left after
backward, agave::likelihood = the forward of both likelihoods); the likelihood's backward, taken
as every op of agave::backward before its first convolution or matrix-product backward (the
likelihoods are the last ops of the forward, so autograd runs their backward first); then by op
name: convolutions (forward and backward), casts and layout copies (to, _to_copy, copy_,
contiguous, clone), and everything else as element-wise and other (activations, gates, shifts,
concatenations, autograd bookkeeping). Time a scope spends outside any op (agave's own loops, such
as the one-pass dropout masks) is charged to the scope's class, or for agave::forward and
agave::backward to a class of its own."""
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
FIRST_LAYER_BACKWARD = re.compile(r"^autograd::engine::evaluate_function: .*(Convolution|Mm|Addmm)")
LIKELIHOOD_BACKWARD = "likelihood (backward)"


def events_of(path):
    with open(path) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    return [e for e in events if e.get("ph") == "X" and "dur" in e]


def classify(event, scopes, backward_start):
    names = [s["name"] for s in scopes]
    for n in names:
        if n in SCOPES:
            return SCOPES[n]
    for s in scopes:
        if s["name"] == "agave::backward" and float(event["ts"]) < backward_start[id(s)]:
            return LIKELIHOOD_BACKWARD
    if CONV.search(event["name"]):
        return "convolutions (forward + backward)"
    if CAST.match(event["name"]):
        return "casts and layout copies"
    return "element-wise and other"


def self_times(events):
    """(event, enclosing events, self time in us) for every event, nested by time per thread."""
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e.get("tid")].append(e)
    out = []
    for evs in by_thread.values():
        evs.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack = []  # [event, end, children time]

        def close(entry):
            e, _, child = entry
            out.append((e, [s[0] for s in stack], float(e["dur"]) - child))
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


def backward_starts(timed):
    """For each agave::backward scope: when its first layer's backward began (its end if none)."""
    starts = {}
    for e, scopes, _ in timed:
        if e["name"] == "agave::backward":
            starts.setdefault(id(e), float(e["ts"]) + float(e["dur"]))
    for e, scopes, _ in timed:
        if FIRST_LAYER_BACKWARD.match(e["name"]):
            for s in scopes:
                if s["name"] == "agave::backward":
                    starts[id(s)] = min(starts[id(s)], float(e["ts"]))
    return starts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--steps", type=int, default=0, help="profiled steps, for ms per step")
    ap.add_argument("--top", type=int, default=10, help="element-wise ops listed by name")
    a = ap.parse_args()
    totals = collections.Counter()
    phase = collections.Counter()
    other = collections.Counter()  # element-wise and other, by op name
    timed = self_times(events_of(a.trace))
    starts = backward_starts(timed)
    for e, scopes, self_us in timed:
        if e["name"] in SCOPES:
            cls = SCOPES[e["name"]]  # work of ours between its ops
        elif e["name"] in PHASES:
            cls = "agave's own loops between ops (dropout masks, ...)"
        else:
            cls = classify(e, scopes, starts)
        totals[cls] += self_us
        if cls == "element-wise and other":
            other[e["name"]] += self_us
        names = [s["name"] for s in scopes] + [e["name"]]
        phase[next((p for p in PHASES if p in names), "outside forward/backward")] += self_us
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
    print()
    print("largest element-wise and other ops (self time):")
    for name, us in other.most_common(a.top):
        print(f"  {name}: {us / 1000 / (a.steps or 1):.1f} ms ({100 * us / whole:.1f} %)")


if __name__ == "__main__":
    main()
