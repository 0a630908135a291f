#!/usr/bin/env python3
"""PyTorch (Python) reference: the CIFAR-default conditional PixelCNN++ of agave (5 resnets x
160 filters x 10 mixtures, the f(z) conditioning stream with a 1x1 projection into every gated
resnet) trained with Adamax under bf16 autocast + channels_last, the same settings agave_trainer
uses on CUDA and on CPUs with bf16 units. The ladder VAE is left out (a few percent of the
FLOPs), so the ratio agave / this slightly favours this script.

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
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def concat_elu(x):
    return F.elu(torch.cat([x, -x], dim=1))


class DownShifted(nn.Conv2d):  # [2,3] kernel: pad top 1, left 1, right 1
    def __init__(self, cin, cout, stride=1):
        super().__init__(cin, cout, (2, 3), stride=stride)

    def forward(self, x):
        return super().forward(F.pad(x, (1, 1, 1, 0)))


class DownRightShifted(nn.Conv2d):  # [2,2] kernel: pad top 1, left 1
    def __init__(self, cin, cout, stride=1):
        super().__init__(cin, cout, (2, 2), stride=stride)

    def forward(self, x):
        return super().forward(F.pad(x, (1, 0, 1, 0)))


class GatedResnet(nn.Module):
    def __init__(self, f, conv, skip=0, cond=True):
        super().__init__()
        self.c1 = conv(2 * f, f)
        self.skip = nn.Conv2d(2 * skip * f, f, 1) if skip else None
        self.c2 = conv(2 * f, 2 * f)
        self.cond = nn.Conv2d(f, 2 * f, 1) if cond else None

    def forward(self, x, h, a=None):
        c1 = self.c1(concat_elu(x))
        if a is not None:
            c1 = c1 + self.skip(concat_elu(a))
        c1 = F.dropout(concat_elu(c1), 0.5, self.training)
        c2 = self.c2(c1)
        if self.cond is not None:
            c2 = c2 + self.cond(h)
        a_, b_ = c2.chunk(2, dim=1)
        return x + a_ * torch.sigmoid(b_)


class CondPixelCnn(nn.Module):
    def __init__(self, f=160, nr=5, m=10, cond=True):
        super().__init__()
        self.conditional = cond
        self.u0 = DownShifted(4, f)
        self.ul0a = DownShifted(4, f)
        self.ul0b = DownRightShifted(4, f)
        self.up_u = nn.ModuleList([GatedResnet(f, DownShifted, 0, cond) for _ in range(3 * nr)])
        self.up_ul = nn.ModuleList(
            [GatedResnet(f, DownRightShifted, 1, cond) for _ in range(3 * nr)])
        n_down = nr + 2 * (nr + 1)
        self.dn_u = nn.ModuleList([GatedResnet(f, DownShifted, 1, cond) for _ in range(n_down)])
        self.dn_ul = nn.ModuleList(
            [GatedResnet(f, DownRightShifted, 2, cond) for _ in range(n_down)])
        self.down_u = nn.ModuleList([DownShifted(f, f, 2) for _ in range(2)])
        self.down_ul = nn.ModuleList([DownRightShifted(f, f, 2) for _ in range(2)])
        self.up_u_t = nn.ModuleList([nn.ConvTranspose2d(f, f, 2, 2) for _ in range(2)])
        self.up_ul_t = nn.ModuleList([nn.ConvTranspose2d(f, f, 2, 2) for _ in range(2)])
        # Conditioning stream on f(z): non-masked 3x3 convs at each resolution.
        if cond:
            self.c0 = nn.Conv2d(3, f, 3, padding=1)
            self.cs = nn.ModuleList([nn.Conv2d(f, f, 3, padding=1) for _ in range(3 * nr)])
            self.cdown = nn.ModuleList(
                [nn.Conv2d(f, f, 3, stride=2, padding=1) for _ in range(2)])
        self.out = nn.Conv2d(f, 10 * m, 1)
        self.nr = nr

    def forward(self, x, fz):
        ones = torch.ones_like(x[:, :1])
        xi = torch.cat([x, ones], 1)
        u = F.pad(self.u0(xi), (0, 0, 1, 0))[:, :, :-1]
        ul = F.pad(self.ul0a(xi), (0, 0, 1, 0))[:, :, :-1] + F.pad(self.ul0b(xi), (1, 0))[:, :, :, :-1]
        hs, k = [None] * 3, 0
        if self.conditional:
            h = self.c0(fz)
            for s in range(3):
                for _ in range(self.nr):
                    h = h + self.cs[k](F.elu(h))
                    k += 1
                hs[s] = h
                if s < 2:
                    h = self.cdown[s](h)
        us, uls, k = [u], [ul], 0
        for s in range(3):
            for _ in range(self.nr):
                u = self.up_u[k](u, hs[s])
                ul = self.up_ul[k](ul, hs[s], u)
                us.append(u)
                uls.append(ul)
                k += 1
            if s < 2:
                u, ul = self.down_u[s](u), self.down_ul[s](ul)
                us.append(u)
                uls.append(ul)
        u, ul, k = us.pop(), uls.pop(), 0
        for s, n in zip((2, 1, 0), (self.nr, self.nr + 1, self.nr + 1)):
            for _ in range(n):
                u = self.dn_u[k](u, hs[s], us.pop())
                ul = self.dn_ul[k](ul, hs[s], torch.cat([u, uls.pop()], 1))
                k += 1
            if s > 0:
                u, ul = self.up_u_t[2 - s](u), self.up_ul_t[2 - s](ul)
        return self.out(F.elu(ul))


def mix_logistic_nll(x, l, m=10):
    # Discretized logistic mixture with RGB-coupled means, in fp32 (as agave does).
    x, l = x.float(), l.float()
    n, _, hh, ww = x.shape
    logits = l[:, :m]
    l = l[:, m:].reshape(n, 3, 3 * m, hh, ww)
    means, log_s, coef = l[:, :, :m], l[:, :, m:2 * m].clamp(min=-7.0), torch.tanh(l[:, :, 2 * m:])
    xe = x.unsqueeze(2)
    m1 = means[:, 1] + coef[:, 0] * xe[:, 0]
    m2 = means[:, 2] + coef[:, 1] * xe[:, 0] + coef[:, 2] * xe[:, 1]
    means = torch.stack([means[:, 0], m1, m2], 1)
    c = xe - means
    inv = torch.exp(-log_s)
    cdf_p = torch.sigmoid(inv * (c + 1 / 255.0))
    cdf_m = torch.sigmoid(inv * (c - 1 / 255.0))
    lp = torch.log((cdf_p - cdf_m).clamp(min=1e-12))
    lp = lp.sum(1) + F.log_softmax(logits, 1)
    return -torch.logsumexp(lp, 1).sum((1, 2))


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
    model = CondPixelCnn(cond=not a.unconditional).to(dev)
    cl = a.layout == "channels_last"
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adamax(model.parameters(), lr=2e-3)
    x = torch.rand(a.batch, 3, 32, 32, device=dev) * 2 - 1
    fz = torch.rand(a.batch, 3, 32, 32, device=dev) * 2 - 1
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
        loss = mix_logistic_nll(x, out).mean()
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
