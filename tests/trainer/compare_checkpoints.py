#!/usr/bin/python3
"""Compares two agave checkpoint folders tensor by tensor with h5py (as users would read them).

usage: compare_checkpoints.py DIR_A DIR_B [--tolerance T] [--only PREFIX]
Prints one line per differing tensor (the first 10) and a summary line
"compared N tensors at steps A and B, M differ"; exits 1 if any differ (exactly, or beyond
rtol = atol = T). --only restricts the comparison to tensor names starting with PREFIX."""
import argparse
import json
import sys

import h5py
import numpy as np


def tensors(folder, prefix):
    manifest = json.load(open(folder + "/manifest.json"))
    out = {}
    for name, shard in manifest["tensors"].items():
        if not name.startswith(prefix):
            continue
        with h5py.File(folder + "/" + manifest["shards"][shard]["file"], "r") as f:
            out[name] = np.array(f[name])
    return manifest, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tolerance", type=float, default=0.0)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    ma, a = tensors(args.a, args.only)
    mb, b = tensors(args.b, args.only)
    if sorted(a) != sorted(b):
        print("tensor names differ")
        return 1
    if not a:
        print("no tensor matches", repr(args.only))
        return 1
    bad, worst = 0, 0.0
    for name in sorted(a):
        diff = float(np.max(np.abs(a[name].astype(np.float64) - b[name]))) if a[name].size else 0.0
        worst = max(worst, diff)
        if args.tolerance == 0:
            same = np.array_equal(a[name], b[name])
        else:
            same = np.allclose(a[name], b[name], rtol=args.tolerance, atol=args.tolerance)
        if not same:
            bad += 1
            if bad <= 10:
                print("differs:", name, diff)
    print("compared %d tensors at steps %d and %d, %d differ (largest difference %.3g)"
          % (len(a), ma["step"], mb["step"], bad, worst))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
