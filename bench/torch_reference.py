#!/usr/bin/env python3
"""PyTorch (Python) reference: the CIFAR-default conditional PixelCNN++ of agave (5 resnets x
160 filters x 10 mixtures, the shared f(z) conditioning stream with a 1x1 projection into every
gated resnet, dropout 0.5) trained with Adamax under bf16 autocast + channels_last, the same
settings agave_trainer uses on CUDA and on CPUs with bf16 units. The network and its likelihood
are python/agave_model.py's (weight norm folded into plain convolutions, which costs PyTorch
nothing per step). The ladder VAE is left out (a few percent of the FLOPs), so the ratio
agave / this slightly favours this script.

  python3 bench/torch_reference.py [--steps N] [--batch B] [--device cuda|cpu]
                                   [--threads T] [--precision bf16|fp32] [--compile]
                                   [--layout channels_last|contiguous] [--unconditional]
--layout: of weights and input (default channels_last, PyTorch's faster CPU layout in both
precisions here). --unconditional drops the f(z) stream and its 1x1 projections: the
PixelCNN++ alone of Table 1 (agave's model.kind: pixelcnn_only).
--compile wraps the model in torch.compile (inductor; on the CPU it generates C++/OpenMP
kernels), timed after the warm-up steps that compile it (compile time printed apart).
Prints "images/s: X" (scripts/gpu-check.sh and bench/run read it)."""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import agave_model  # noqa: E402  (found through the path above)


def reference_model(conditional):
    """agave's CIFAR-10 default PixelCNN++ (model/options.h), f(z) a 3-channel image."""
    return agave_model.PixelCnn(image_channels=3, nr_resnet=5, nr_filters=160, nr_mix=10,
                                cond_channels=3 if conditional else 0, fold=True,
                                conditioning="shared", dropout=0.5)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
    p.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (inductor)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--layout", choices=("channels_last", "contiguous"), default="channels_last")
    p.add_argument("--unconditional", action="store_true", help="no f(z) stream (PixelCNN++ alone)")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    bf16 = a.precision == "bf16"
    torch.manual_seed(1)
    model = reference_model(conditional=not a.unconditional).to(dev)
    cl = a.layout == "channels_last"
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adamax(model.parameters(), lr=2e-3)
    x = torch.rand(a.batch, 3, 32, 32, device=dev) * 2 - 1
    fz = torch.rand(a.batch, 3, 32, 32, device=dev) * 2 - 1 if not a.unconditional else None
    fwd = torch.compile(model) if a.compile else model
    print("parameters:", sum(p.numel() for p in model.parameters()))

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    t_start = time.time()
    for i in range(a.steps + a.warmup):
        if i == a.warmup:  # warm-up (and compilation) done
            sync()
            t0 = time.time()
            warm = t0 - t_start
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            xin = x.contiguous(memory_format=torch.channels_last) if cl else x
            out = fwd(xin, fz)
        # In fp32, as agave computes its likelihoods.
        loss = -agave_model.discretized_mix_logistic_log_prob(x.float(), out.float()).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync()
    dt = time.time() - t0
    print(f"torch {torch.__version__}, {dev}, batch {a.batch}, {a.steps} step(s), "
          f"{'bf16 autocast' if bf16 else 'fp32'}{' + channels_last' if cl else ''}, "
          f"{'unconditional' if a.unconditional else 'conditional'}, "
          f"{torch.get_num_threads()} thread(s), {'torch.compile' if a.compile else 'eager'}, "
          f"warm-up {warm:.1f} s")
    print(f"images/s: {a.steps * a.batch / dt:.3f}")
    if dev.type == "cuda":
        print(f"max memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
