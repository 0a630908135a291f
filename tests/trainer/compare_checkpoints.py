#!/usr/bin/python3
"""Compares two agave checkpoint folders tensor by tensor with h5py (as users would read them).

usage: compare_checkpoints.py DIR_A DIR_B [--tolerance T]
Prints one line per differing tensor and exits 1 if any differ (exact unless --tolerance)."""
import json
import sys

import h5py
import numpy as np


def tensors(folder):
    manifest = json.load(open(folder + "/manifest.json"))
    out = {}
    for name, shard in manifest["tensors"].items():
        with h5py.File(folder + "/" + manifest["shards"][shard]["file"], "r") as f:
            out[name] = np.array(f[name])
    return manifest, out


def main():
    a_dir, b_dir = sys.argv[1], sys.argv[2]
    tol = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--tolerance" else 0.0
    ma, a = tensors(a_dir)
    mb, b = tensors(b_dir)
    bad = 0
    if sorted(a) != sorted(b):
        print("tensor names differ")
        return 1
    for name in sorted(a):
        same = np.array_equal(a[name], b[name]) if tol == 0 else np.allclose(a[name], b[name], rtol=tol, atol=tol)
        if not same:
            bad += 1
            if bad <= 10:
                print("differs:", name, float(np.max(np.abs(a[name].astype(np.float64) - b[name]))))
    print("compared %d tensors at steps %d and %d, %d differ" % (len(a), ma["step"], mb["step"], bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
