#!/usr/bin/env python3
"""Convolution FLOPs and time in a oneDNN verbose log (DNNL_VERBOSE=1, oneDNN 2.x as in LibTorch
1.13): for each executed convolution primitive 2 · mb · ic/g · oc · kh · kw multiply-adds per
output position (per input position for a deconvolution), summed by propagation kind.

  DNNL_VERBOSE=1 build/bin/bench_train_step ... > LOG; bench/dnnl_conv_flops.py LOG

One step's FLOPs: the difference of two runs that differ by one step (--steps 1 and 2), since
the log also holds the data-dependent init and the warm-up step."""
import collections
import re
import sys

SHAPE = re.compile(r"mb(\d+)(?:_g(\d+))?_?ic(\d+)oc(\d+)_(?:id\d+od\d+kd\d+sd\d+dd\d+pd\d+_)?"
                   r"ih(\d+)oh(\d+)kh(\d+)sh\d+dh\d+ph\d+_iw(\d+)ow(\d+)kw(\d+)")


def main(path):
    flops, ms = collections.Counter(), 0.0
    with open(path, errors="replace") as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 6 or parts[1] != "exec" or "convolution" not in parts[3]:
                continue
            m = SHAPE.search(line)
            if not m:
                continue
            mb, g, ic, oc, ih, oh, kh, iw, ow, kw = (int(x) if x else 1 for x in m.groups())
            positions = ih * iw if parts[3] == "deconvolution" else oh * ow
            n = 2 * mb * (ic // g) * oc * positions * kh * kw
            flops[parts[5]] += n
            flops["all"] += n
            ms += float(parts[-1])
    for kind, n in sorted(flops.items()):
        print(f"{kind}: {n / 1e9:.2f} GFLOP")
    print(f"time in convolutions: {ms / 1e3:.2f} s")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
