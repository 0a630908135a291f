"""AGAVE in plain PyTorch: the model agave trains (model/ in C++), for loading its weights.

Parameter and buffer names are agave's own `named_parameters()` / `named_buffers()` names
(`vae.layers.0.up_params.v`, `pixelcnn.up_u.2.conv1.g`, ...), so a state_dict written by
scripts/agave_to_torch.py loads with `load_state_dict` as it is. docs/pytorch.md lists them.

    import agave_model
    model = agave_model.load("model.pt")          # built from the config stored in the file
    terms = model(x)                               # x: N×C×H×W uint8 or float pixel values 0..255
    bpd = model.bits_per_dim(terms.pixel_nll + terms.kl).mean()

Evaluation follows agave exactly, draw for draw: `forward` draws z ~ q(z|x) with
`torch.randn_like`, one call per latent layer from the top layer down, and
`importance_weighted_bound` and `evaluate` batch and chunk as agave_eval does. With the same
LibTorch build (Debian's python3-torch is the library agave links) and the generator seeded
as agave_eval seeds it (`agave_eval_seed`), the numbers are agave_eval's to float rounding.
Training (data-dependent init, free bits, dropout) is not reproduced here.
"""

import math
from collections import namedtuple
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

# Image shape of each data set agave knows (data/options.h): channels, size.
DATASETS = {"fashion_mnist": (1, 28), "cifar10": (3, 32)}
KINDS = ("agave", "vae_only", "pixelcnn_only")
# The PixelCNN's conditioning streams (model/options.h, PixelCnnConditioning).
CONDITIONINGS = ("per_layer", "shared")

LossTerms = namedtuple("LossTerms", "pixel_nll aux_nll kl")
"""Per-image terms in nats (N): −ln p(x|z), −ln p(y|z), ln q(z|x) − ln p(z) of the drawn z."""


@dataclass
class AgaveConfig:
    """The sizes that shape the model: the checkpoint manifest's `model_signature`."""

    dataset: str = "fashion_mnist"
    kind: str = "agave"
    vae_depth: int = 2
    vae_width: int = 64
    vae_latent_channels: int = 8
    vae_latent_resolution: int = 14
    vae_iaf_steps: int = 0
    pixelcnn_nr_resnet: int = 5
    pixelcnn_nr_filters: int = 160
    pixelcnn_nr_logistic_mix: int = 10
    pixelcnn_conditioning: str = "shared"  # ignored by pixelcnn_only, which has no stream
    aux_resolution: int = 28
    aux_color_bins: int = 256
    fold_weight_norm: bool = False  # weight-norm layers hold `weight`, `bias` instead of v, g, b
    extra: dict = field(default_factory=dict)

    @property
    def image_channels(self):
        return DATASETS[self.dataset][0]

    @property
    def image_size(self):
        return DATASETS[self.dataset][1]

    @classmethod
    def from_signature(cls, sig, fold_weight_norm=False):
        """From a manifest's `model_signature` (strings keyed `model.vae.depth`, ...)."""
        dataset = sig["data.dataset"]
        if dataset not in DATASETS:
            raise ValueError(f"unknown data set {dataset!r}; known: {', '.join(DATASETS)}")
        kind = sig.get("model.kind", "agave")  # manifests from before the baselines have none
        if kind not in KINDS:
            raise ValueError(f"unknown model.kind {kind!r}; known: {', '.join(KINDS)}")
        # "none" for pixelcnn_only; "f(z)" (or no key) was written before per_layer existed, when
        # the shared stream was the only one (checkpoint/resume.cpp).
        conditioning = sig.get("model.pixelcnn.conditioning", "shared")
        if conditioning in ("f(z)", "none"):
            conditioning = "shared"
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"unknown model.pixelcnn.conditioning {conditioning!r}; known: "
                             f"{', '.join(CONDITIONINGS)}")
        return cls(
            dataset=dataset,
            kind=kind,
            vae_depth=int(sig["model.vae.depth"]),
            vae_width=int(sig["model.vae.width"]),
            vae_latent_channels=int(sig["model.vae.latent_channels"]),
            vae_latent_resolution=int(sig["model.vae.latent_resolution"]),
            vae_iaf_steps=int(sig.get("model.vae.iaf_steps", "0")),
            pixelcnn_nr_resnet=int(sig["model.pixelcnn.nr_resnet"]),
            pixelcnn_nr_filters=int(sig["model.pixelcnn.nr_filters"]),
            pixelcnn_nr_logistic_mix=int(sig["model.pixelcnn.nr_logistic_mix"]),
            pixelcnn_conditioning=conditioning,
            aux_resolution=int(sig["aux.resolution"]),
            aux_color_bins=int(sig["aux.color_bins"]),
            fold_weight_norm=fold_weight_norm,
        )

    def to_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "extra"}


# ---- weight-normalised convolutions (model/weight_norm.h) ----------------------------------


class WeightNormConv2d(nn.Module):
    """Conv, transposed conv or 1×1 conv with W = g·v/‖v‖ per output channel.

    pad: zero padding of the input (left, right, top, bottom); crop: rows and columns removed
    from a transposed conv's output (left, right, top, bottom). Asymmetric padding makes the
    PixelCNN's shifted (causal) convolutions. Folded, the layer holds the effective kernel as
    `weight` and the bias as `bias`, like nn.Conv2d; otherwise agave's `v`, `g`, `b`.
    """

    def __init__(self, cin, cout, kernel, stride=1, pad=(0, 0, 0, 0), transposed=False,
                 crop=(0, 0, 0, 0), fold=False):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.stride = stride
        self.pad = tuple(pad)
        self.crop = tuple(crop)
        self.transposed = transposed
        self.fold = fold
        shape = (cin, cout, kh, kw) if transposed else (cout, cin, kh, kw)
        if fold:
            self.weight = nn.Parameter(torch.randn(shape) * 0.05)
            self.bias = nn.Parameter(torch.zeros(cout))
        else:
            self.v = nn.Parameter(torch.randn(shape) * 0.05)
            self.g = nn.Parameter(torch.ones(cout))
            self.b = nn.Parameter(torch.zeros(cout))

    def effective_weight(self):
        if self.fold:
            return self.weight
        return fold_weight(self.v, self.g, self.transposed)

    def forward(self, x):
        w = self.effective_weight()
        bias = self.bias if self.fold else self.b
        if not self.transposed:
            if any(self.pad):
                x = F.pad(x, self.pad)
            return F.conv2d(x, w, bias, self.stride)
        y = F.conv_transpose2d(x, w, bias, self.stride)
        left, right, top, bottom = self.crop
        return y[:, :, top:y.size(2) - bottom, left:y.size(3) - right]


def fold_weight(v, g, transposed):
    """g·v/‖v‖, the norm per output channel (dim 0 of a conv kernel, dim 1 of a transposed one)."""
    if transposed:
        norm = v.pow(2).sum((0, 2, 3), keepdim=True).sqrt()
        return v * (g.view(1, -1, 1, 1) / norm)
    norm = v.pow(2).sum((1, 2, 3), keepdim=True).sqrt()
    return v * (g.view(-1, 1, 1, 1) / norm)


def down_shifted_conv(cin, cout, kernel=(2, 3), stride=1, fold=False):
    kh, kw = kernel
    side = (kw - 1) // 2
    return WeightNormConv2d(cin, cout, kernel, stride, pad=(side, side, kh - 1, 0), fold=fold)


def down_right_shifted_conv(cin, cout, kernel=(2, 2), stride=1, fold=False):
    kh, kw = kernel
    return WeightNormConv2d(cin, cout, kernel, stride, pad=(kw - 1, 0, kh - 1, 0), fold=fold)


def down_shifted_deconv(cin, cout, kernel=(2, 3), stride=2, fold=False):
    kh, kw = kernel
    left = (kw - 1) // 2
    return WeightNormConv2d(cin, cout, kernel, stride, transposed=True,
                            crop=(left, kw - stride - left, 0, kh - stride), fold=fold)


def down_right_shifted_deconv(cin, cout, kernel=(2, 2), stride=2, fold=False):
    kh, kw = kernel
    return WeightNormConv2d(cin, cout, kernel, stride, transposed=True,
                            crop=(0, kw - stride, 0, kh - stride), fold=fold)


def nin(cin, cout, fold=False):
    return WeightNormConv2d(cin, cout, 1, fold=fold)


def plain_conv(cin, cout, kernel=3, stride=1, fold=False):
    p = (kernel - 1) // 2
    return WeightNormConv2d(cin, cout, kernel, stride, pad=(p, p, p, p), fold=fold)


# ---- PixelCNN++ with the AGAVE conditioning stream (model/layers.h, model/pixelcnn.h) -------


def down_shift(x):
    return F.pad(x[:, :, :-1, :], (0, 0, 1, 0))


def right_shift(x):
    return F.pad(x[:, :, :, :-1], (1, 0, 0, 0))


def concat_elu(x):
    return F.elu(torch.cat([x, -x], 1))


class GatedResnet(nn.Module):
    """x + a·σ(b), (a, b) = conv2(dropout(concat_elu(conv1(concat_elu(x))
    [+ nin_skip(concat_elu(skip))]))) [+ cond_conv(elu(h))]. Dropout acts in training mode only
    (agave trains with 0.5; loading weights needs none: the default)."""

    def __init__(self, filters, down_right, skip_channels, cond_channels, fold, dropout=0.0):
        super().__init__()
        self.dropout = dropout
        conv = down_right_shifted_conv if down_right else down_shifted_conv
        self.conv1 = conv(2 * filters, filters, fold=fold)
        self.nin_skip = nin(2 * skip_channels, filters, fold=fold) if skip_channels else None
        self.conv2 = conv(2 * filters, 2 * filters, fold=fold)
        self.cond_conv = plain_conv(cond_channels, 2 * filters, 1, fold=fold) if cond_channels else None

    def forward(self, x, skip=None, h=None):
        c1 = self.conv1(concat_elu(x))
        if skip is not None:
            c1 = c1 + self.nin_skip(concat_elu(skip))
        c1 = concat_elu(c1)
        if self.dropout > 0:
            c1 = F.dropout(c1, self.dropout, self.training)
        c2 = self.conv2(c1)
        if h is not None:
            c2 = c2 + self.cond_conv(F.elu(h))
        a, b = c2.chunk(2, 1)
        return x + a * torch.sigmoid(b)


SCALES = 3


def position_scale(p, nr):
    """The scale (H / 2^s) of gated-resnet position p (model/pixelcnn.h): up pass nr per scale at
    0, 1, 2; down pass nr, nr + 1, nr + 1 at 2, 1, 0."""
    if p < SCALES * nr:
        return p // nr
    d = p - SCALES * nr
    return SCALES - 1 if d < nr else SCALES - 2 - (d - nr) // (nr + 1)


class PixelCnn(nn.Module):
    """Conditional PixelCNN++: returns the discretized logistic mixture parameters of x.
    dropout: of every gated resnet, in training mode (bench/torch_reference.py trains it)."""

    def __init__(self, image_channels, nr_resnet, nr_filters, nr_mix, cond_channels, fold,
                 conditioning="shared", dropout=0.0):
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"unknown conditioning {conditioning!r}; known: {CONDITIONINGS}")
        f, nr, inp = nr_filters, nr_resnet, image_channels + 1
        self.nr_resnet = nr
        out_channels = 10 * nr_mix if image_channels == 3 else 3 * nr_mix
        self.u_init = down_shifted_conv(inp, f, (2, 3), fold=fold)
        self.ul_init_down = down_shifted_conv(inp, f, (1, 3), fold=fold)
        self.ul_init_right = down_right_shifted_conv(inp, f, (2, 1), fold=fold)
        cf = f if cond_channels else 0
        def resnets(down_right, skip, count):
            return nn.ModuleList(
                GatedResnet(f, down_right, skip, cf, fold, dropout) for _ in range(count))
        self.up_u = resnets(False, 0, SCALES * nr)
        self.up_ul = resnets(True, f, SCALES * nr)
        self.down_u = resnets(False, f, SCALES * nr + 2)
        self.down_ul = resnets(True, 2 * f, SCALES * nr + 2)
        self.u_downsample = nn.ModuleList(
            down_shifted_conv(f, f, (2, 3), 2, fold=fold) for _ in range(SCALES - 1))
        self.ul_downsample = nn.ModuleList(
            down_right_shifted_conv(f, f, (2, 2), 2, fold=fold) for _ in range(SCALES - 1))
        self.u_upsample = nn.ModuleList(down_shifted_deconv(f, f, fold=fold) for _ in range(SCALES - 1))
        self.ul_upsample = nn.ModuleList(
            down_right_shifted_deconv(f, f, fold=fold) for _ in range(SCALES - 1))
        self.out = nin(f, out_channels, fold=fold)
        # cond_channels = 0 (pixelcnn_only): unconditional, no conditioning stream, as agave.
        self.conditioned = bool(cond_channels)
        self.per_layer = bool(cond_channels) and conditioning == "per_layer"
        self.scales = [position_scale(p, nr) for p in range(2 * SCALES * nr + 2)]
        if self.per_layer:
            # One 3×3 conv per gated-resnet position (model/pixelcnn.h): the first takes f(z),
            # then stride 2 where the scale grows; all others keep the size.
            self.cond_layers = nn.ModuleList(
                plain_conv(cond_channels if p == 0 else f, f, 3,
                           2 if p > 0 and self.scales[p] > self.scales[p - 1] else 1, fold=fold)
                for p in range(len(self.scales)))
        elif cond_channels:
            self.cond_stem = plain_conv(cond_channels, f, 3, fold=fold)
            self.cond_blocks = nn.ModuleList(
                plain_conv(f, f, 3, fold=fold) for _ in range(SCALES * nr))
            self.cond_downsample = nn.ModuleList(
                plain_conv(f, f, 3, 2, fold=fold) for _ in range(SCALES - 1))

    def cond_features(self, cond):
        """Feature maps of f(z), computed once per f(z): one per gated-resnet position (per_layer)
        or per resolution H, H/2, H/4 (shared); Nones when cond is."""
        nr, features = self.nr_resnet, []
        if cond is None:
            return [None] * SCALES
        if self.per_layer:
            h = self.cond_layers[0](cond)
            features.append(h)
            for p in range(1, len(self.scales)):
                if self.scales[p] > self.scales[p - 1]:
                    h = self.cond_layers[p](F.elu(h))
                elif self.scales[p] < self.scales[p - 1]:
                    h = self.cond_layers[p](F.interpolate(F.elu(h), scale_factor=2.0,
                                                          mode="nearest"))
                else:
                    h = h + self.cond_layers[p](F.elu(h))
                features.append(h)
            return features
        h = self.cond_stem(cond)
        for s in range(SCALES):
            if s > 0:
                h = self.cond_downsample[s - 1](F.elu(h))
            for i in range(nr):
                h = h + self.cond_blocks[s * nr + i](F.elu(h))
            features.append(h)
        return features

    def forward(self, x, cond):
        """x: N×C×H×W in [−1, 1]; cond: f(z) at x's size, or None when unconditional."""
        feats, nr = self.cond_features(cond), self.nr_resnet

        def h(p):  # the conditioning map of gated-resnet position p
            return feats[p if self.per_layer else self.scales[p]]
        xp = torch.cat([x, torch.ones_like(x[:, :1])], 1)
        us = [down_shift(self.u_init(xp))]
        uls = [down_shift(self.ul_init_down(xp)) + right_shift(self.ul_init_right(xp))]
        for s in range(SCALES):
            for r in range(nr):
                us.append(self.up_u[s * nr + r](us[-1], None, h(s * nr + r)))
                uls.append(self.up_ul[s * nr + r](uls[-1], us[-1], h(s * nr + r)))
            if s + 1 < SCALES:
                us.append(self.u_downsample[s](us[-1]))
                uls.append(self.ul_downsample[s](uls[-1]))
        u, ul, i = us.pop(), uls.pop(), 0
        for s in reversed(range(SCALES)):
            for _ in range(nr if s == SCALES - 1 else nr + 1):
                u = self.down_u[i](u, us.pop(), h(SCALES * nr + i))
                ul = self.down_ul[i](ul, torch.cat([u, uls.pop()], 1), h(SCALES * nr + i))
                i += 1
            if s > 0:
                u = self.u_upsample[SCALES - 1 - s](u)
                ul = self.ul_upsample[SCALES - 1 - s](ul)
        return self.out(F.elu(ul))


# ---- the ladder VAE (model/vae.h, model/vae_layer.h, model/vae_iaf.h) -----------------------

HALF_LOG_2PI = 0.91893853320467274178


def gaussian_log_prob(z, mean, logsd):
    t = (z - mean) * torch.exp(-logsd)
    return -0.5 * t * t - logsd - HALF_LOG_2PI


class ArConv2d(nn.Module):
    """Masked conv of an IAF step, autoregressive over space and a `latent`-long channel order."""

    def __init__(self, cin, cout, latent, zero_diagonal=False, kernel=3):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        m = torch.zeros(cout, cin, kernel, kernel)
        c = kernel // 2
        m[:, :, c + 1:, :] = 1.0
        m[:, :, c, c + 1:] = 1.0
        for o in range(cout):
            for i in range(cin):
                deg_out, deg_in = o * latent // cout, i * latent // cin
                if (deg_in < deg_out) if zero_diagonal else (deg_in <= deg_out):
                    m[o, i, c, c] = 1.0
        self.register_buffer("mask", m)
        self.padding = kernel // 2

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class IafStep(nn.Module):
    def __init__(self, latent, hidden):
        super().__init__()
        self.hidden0 = ArConv2d(latent, hidden, latent)
        self.hidden1 = ArConv2d(hidden, hidden, latent)
        self.shift = ArConv2d(hidden, latent, latent, zero_diagonal=True)
        self.log_scale = ArConv2d(hidden, latent, latent, zero_diagonal=True)

    def forward(self, z, context):
        h = F.elu(self.hidden0(z) + context)
        h = F.elu(self.hidden1(h))
        return 0.1 * self.shift(h), 0.1 * self.log_scale(h)


class LadderLayer(nn.Module):
    def __init__(self, width, latent, iaf_steps, fold):
        super().__init__()
        self.width, self.ctx = width, (width if iaf_steps > 0 else 0)
        self.up_params = plain_conv(width, 2 * latent, fold=fold)
        self.up_conv1 = plain_conv(width, self.ctx + width, fold=fold)
        self.up_conv2 = plain_conv(width, width, fold=fold)
        self.down_params = plain_conv(width, 4 * latent, fold=fold)
        self.down_conv1 = plain_conv(width, self.ctx + width, fold=fold)
        self.down_conv2 = plain_conv(latent + width, width, fold=fold)
        self.iaf = nn.ModuleList(IafStep(latent, width) for _ in range(iaf_steps))

    def up(self, h):
        """Bottom-up: (h for the layer above, posterior mean, posterior log-sd, IAF context)."""
        act = F.elu(h)
        mean, logsd = self.up_params(act).chunk(2, 1)
        context, det = self.up_conv1(act).split([self.ctx, self.width], 1)
        return h + 0.1 * self.up_conv2(F.elu(det)), mean, logsd, context

    def down(self, h, up, z_mode):
        """Top-down with the posterior: (h for the layer below, ln q(z|x), ln p(z)), elementwise."""
        act = F.elu(h)
        p_mean, p_logsd, rz_mean, rz_logsd = self.down_params(act).chunk(4, 1)
        context, det = self.down_conv1(act).split([self.ctx, self.width], 1)
        _, up_mean, up_logsd, up_context = up
        mean, logsd = up_mean + rz_mean, up_logsd + rz_logsd
        # agave draws the noise with torch's generator outside training steps: same call here.
        eps = torch.zeros_like(mean) if z_mode == "mean" else torch.randn_like(mean)
        z = mean + torch.exp(logsd) * eps
        log_q = gaussian_log_prob(z, mean, logsd)
        if len(self.iaf):
            context = up_context + context
            for s, step in enumerate(self.iaf):
                if s > 0:
                    z, log_q = z.flip(1), log_q.flip(1)
                shift, log_scale = step(z, context)
                z = (z - shift) * torch.exp(-log_scale)
                log_q = log_q + log_scale
        log_p = gaussian_log_prob(z, p_mean, p_logsd)
        return h + 0.1 * self.down_conv2(F.elu(torch.cat([z, det], 1))), log_q, log_p


def log2_ratio(a, b):
    k = int(round(math.log2(max(a, b) / min(a, b))))
    if min(a, b) << k != max(a, b):
        raise ValueError(f"{a} → {b} is not a power-of-two change of resolution")
    return k if b >= a else -k


class Vae(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c, s, w, fold = cfg.image_channels, cfg.image_size, cfg.vae_width, cfg.fold_weight_norm
        r = cfg.vae_latent_resolution
        self.latent_resolution = r
        down = -log2_ratio(s, r)
        stem = [plain_conv(c, w, 5, 1, fold=fold)] if down == 0 else []
        for i in range(down):
            if i > 0:
                stem.append(nn.ELU())
            stem.append(plain_conv(c if i == 0 else w, w, 5, 2, fold=fold))
        self.stem = nn.Sequential(*stem)
        self.layers = nn.ModuleList(
            LadderLayer(w, cfg.vae_latent_channels, cfg.vae_iaf_steps, fold)
            for _ in range(cfg.vae_depth))
        self.h_top = nn.Parameter(torch.zeros(w))
        steps = log2_ratio(r, cfg.aux_resolution)
        n = max(1, abs(steps))
        decoder = [nn.ELU()]
        for i in range(n):
            out = c if i + 1 == n else w
            if i > 0:
                decoder.append(nn.ELU())
            if steps > 0:
                decoder.append(WeightNormConv2d(w, out, 5, 2, transposed=True, crop=(2, 1, 2, 1),
                                                fold=fold))
            else:
                decoder.append(plain_conv(w, out, 5, 2 if steps < 0 else 1, fold=fold))
        self.decoder = nn.Sequential(*decoder)
        self.log_scale = nn.Parameter(torch.full((c,), math.log(32.0)))

    def forward(self, x, z_mode="sample"):
        """(f(z) in [−1, 1] units at aux resolution, ln q(z|x), ln p(z)) per image."""
        h = self.stem((x.float() + 0.5) / 256.0 - 0.5)
        ups = []
        for layer in self.layers:
            ups.append(layer.up(h))
            h = ups[-1][0]
        n, r = x.size(0), self.latent_resolution
        h = self.h_top.view(1, -1, 1, 1).expand(n, -1, r, r).contiguous()
        log_q = torch.zeros(n, device=x.device)
        log_p = torch.zeros(n, device=x.device)
        for i in reversed(range(len(self.layers))):
            h, lq, lp = self.layers[i].down(h, ups[i], z_mode)
            log_p = log_p + lp.sum((1, 2, 3))
            log_q = log_q + lq.sum((1, 2, 3))
        return self.decoder(h), log_q, log_p


# ---- likelihoods (model/likelihood.h) -------------------------------------------------------


def discretized_mix_logistic_log_prob(x, params):
    """ln p(x) per image (N, nats); x: N×C×H×W in [−1, 1] at bin centres."""
    n, c, hh, ww = x.shape
    m = params.size(1) // (10 if c == 3 else 3)
    logits = params[:, :m]
    rest = params[:, m:].reshape(n, c, -1, hh, ww)
    means = rest[:, :, :m]
    log_scales = rest[:, :, m:2 * m].clamp_min(-7.0)
    xe = x.unsqueeze(2)
    if c == 3:
        coeffs = torch.tanh(rest[:, :, 2 * m:3 * m])
        x0, x1 = xe[:, 0], xe[:, 1]
        m1 = means[:, 1] + coeffs[:, 0] * x0
        m2 = means[:, 2] + coeffs[:, 1] * x0 + coeffs[:, 2] * x1
        means = torch.stack([means[:, 0], m1, m2], 1)
    centered = xe - means
    inv_s = torch.exp(-log_scales)
    plus_in = inv_s * (centered + 1.0 / 255.0)
    min_in = inv_s * (centered - 1.0 / 255.0)
    log_cdf_plus = -F.softplus(-plus_in)
    log_one_minus_cdf_min = -F.softplus(min_in)
    d = (inv_s * (2.0 / 255.0)).clamp_min(1e-20)
    log_mass = -F.softplus(-plus_in) - F.softplus(min_in) + torch.log(-torch.expm1(-d))
    mid_in = inv_s * centered
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in)
    interior = torch.where(log_mass > math.log(1e-5), log_mass.clamp_min(math.log(1e-12)),
                           log_pdf_mid - math.log(127.5))
    log_probs = torch.where(xe < -0.999, log_cdf_plus,
                            torch.where(xe > 0.999, log_one_minus_cdf_min, interior))
    joint = log_probs.sum(1) + torch.log_softmax(logits, 1)
    return torch.logsumexp(joint, 1).sum((1, 2))


def discretized_logistic_binned_log_prob(y, mean, log_scale, bins):
    """ln p(y) per image (N, nats) with `bins` color bins, y and mean in pixel units."""
    log_scale = log_scale.view(1, -1, 1, 1).clamp_min(-7.0)
    width = 256.0 / bins
    lower = torch.floor(y / width) * width
    upper = lower + width
    inv_s = torch.exp(-log_scale)
    u, l = (upper - mean) * inv_s, (lower - mean) * inv_s
    lowest, highest = lower < 0.5, upper > 255.5
    zero = torch.zeros((), device=y.device)
    log_sig_u = torch.where(highest, zero, -F.softplus(-u))
    log_sig_neg_l = torch.where(lowest, zero, -F.softplus(l))
    d = (inv_s * width).expand_as(u).clamp_min(1e-20)
    log_gap = torch.where(lowest | highest, zero, torch.log(-torch.expm1(-d)))
    return (log_sig_u + log_sig_neg_l + log_gap).sum((1, 2, 3))


# ---- the composite ------------------------------------------------------------------------


class Agave(nn.Module):
    """VAE + conditional PixelCNN++; names as agave's AgaveImpl (`vae.…`, `pixelcnn.…`)."""

    def __init__(self, cfg):
        super().__init__()
        if cfg.kind not in KINDS:
            raise ValueError(f"unknown model kind {cfg.kind!r}")
        self.cfg = cfg
        c = cfg.image_channels
        self.vae = Vae(cfg)
        # The PixelCNN++ alone is unconditional (model/agave.cpp).
        cond = 0 if cfg.kind == "pixelcnn_only" else c
        self.pixelcnn = PixelCnn(c, cfg.pixelcnn_nr_resnet, cfg.pixelcnn_nr_filters,
                                 cfg.pixelcnn_nr_logistic_mix, cond, cfg.fold_weight_norm,
                                 cfg.pixelcnn_conditioning)

    def dims_per_image(self):
        return self.cfg.image_channels * self.cfg.image_size ** 2

    def bits_per_dim(self, nats):
        return nats / (self.dims_per_image() * math.log(2.0))

    def aux_target(self, x):
        """y: x average-pooled to the aux resolution, rounded half to even (torch.round)."""
        k = self.cfg.image_size // self.cfg.aux_resolution
        xf = x.float()
        return xf if k == 1 else torch.round(F.avg_pool2d(xf, k))

    def conditioning(self, fz):
        s = self.cfg.image_size
        return fz if fz.size(-1) == s else F.interpolate(fz, size=(s, s), mode="nearest")

    def decoder_log_prob(self, x, fz):
        """ln p(y|z) per image for y = aux_target(x)."""
        return discretized_logistic_binned_log_prob(
            self.aux_target(x), 127.5 * (fz + 1.0), self.vae.log_scale, self.cfg.aux_color_bins)

    def pixel_log_prob(self, x, fz):
        """ln p(x|z) of the PixelCNN per image, given f(z) (aux resolution, [−1, 1] units)."""
        xs = x.float() / 127.5 - 1.0
        cond = self.conditioning(fz) if self.pixelcnn.conditioned else None
        return discretized_mix_logistic_log_prob(xs, self.pixelcnn(xs, cond))

    def _no_latent(self, x):
        c, s = self.cfg.image_channels, self.cfg.image_size
        return torch.zeros(x.size(0), c, s, s, device=x.device)

    def forward(self, x, z_mode="sample"):
        """Per-image LossTerms in nats; z ~ q(z|x) (z_mode "sample") or its posterior means
        ("mean": deterministic, an approximation agave itself does not report)."""
        if self.cfg.kind == "pixelcnn_only":
            pixel = -self.pixel_log_prob(x, self._no_latent(x))
            zeros = torch.zeros_like(pixel)
            return LossTerms(pixel, zeros, zeros)
        fz, log_q, log_p = self.vae(x, z_mode)
        kl = log_q - log_p
        if self.cfg.kind == "vae_only":
            return LossTerms(-self.decoder_log_prob(x, fz), torch.zeros_like(kl), kl)
        return LossTerms(-self.pixel_log_prob(x, fz), -self.decoder_log_prob(x, fz), kl)

    @torch.no_grad()
    def importance_weighted_bound(self, x, k, chunk=256):
        """ln p(x) ≥ logsumexp_k [ln p(x|z_k) + ln p(z_k) − ln q(z_k|x)] − ln K per image (nats).
        Rows are the images repeated K times, run `chunk` rows at a time, as agave does."""
        n = x.size(0)
        index = torch.arange(n, device=x.device).repeat_interleave(k)
        log_w = []
        for start in range(0, n * k, chunk):
            xb = x.index_select(0, index[start:start + chunk])
            if self.cfg.kind == "pixelcnn_only":
                log_w.append(self.pixel_log_prob(xb, self._no_latent(xb)))
                continue
            fz, log_q, log_p = self.vae(xb)
            log_px = (self.decoder_log_prob(xb, fz) if self.cfg.kind == "vae_only"
                      else self.pixel_log_prob(xb, fz))
            log_w.append(log_px + log_p - log_q)
        w = torch.cat(log_w).view(n, k).double()
        return (torch.logsumexp(w, 1) - math.log(k)).float()

    @torch.no_grad()
    def evaluate(self, images, k, batch_size):
        """agave_eval's numbers for `images` (N×C×H×W uint8) on one rank, in bits/dim: the
        single-sample ELBO, KL, aux and VAE terms and the K-sample IW bound, batch by batch."""
        was_training = self.training
        self.eval()
        to_bpd = 1.0 / (self.dims_per_image() * math.log(2.0))
        sums = dict(elbo_bpd=0.0, kl_bpd=0.0, aux_bpd=0.0, vae_bpd=0.0, iw_bpd=0.0)
        for start in range(0, images.size(0), batch_size):
            x = images[start:start + batch_size]
            t = self(x)
            decoder = t.pixel_nll if self.cfg.kind == "vae_only" else t.aux_nll
            aux = (decoder * to_bpd).double()
            sums["elbo_bpd"] += ((t.pixel_nll + t.kl) * to_bpd).double().sum().item()
            sums["kl_bpd"] += (t.kl * to_bpd).sum().item()
            sums["aux_bpd"] += aux.sum().item()
            sums["vae_bpd"] += (aux + (t.kl * to_bpd).double()).sum().item()
            iw = -self.importance_weighted_bound(x, k, batch_size) * to_bpd
            sums["iw_bpd"] += iw.double().sum().item()
        self.train(was_training)
        out = {key: v / images.size(0) for key, v in sums.items()}
        if self.cfg.kind == "pixelcnn_only":
            out["aux_bpd"] = out["vae_bpd"] = float("nan")
        out["images"] = images.size(0)
        return out


def agave_eval_seed(run_seed, rank=0):
    """The generator seed agave_eval gives rank `rank` before it evaluates (trainer/seed.h)."""
    return (run_seed * 1000003 + rank + 1) % 2**64


def load(path, map_location="cpu"):
    """An Agave in eval mode from a file written by scripts/agave_to_torch.py."""
    blob = torch.load(path, map_location=map_location)
    cfg = AgaveConfig(**blob["config"])
    model = Agave(cfg)
    model.load_state_dict(blob["state_dict"])
    return model.eval()
