#!/usr/bin/python3
"""Export an agave checkpoint's weights as a PyTorch state_dict (docs/pytorch.md).

    scripts/agave_to_torch.py runs/quickstart OUT.pt            # EMA weights, weight norm kept
    scripts/agave_to_torch.py --live --fold-weight-norm CKPT OUT.pt

OUT.pt holds {"state_dict", "config", "weights", "weight_norm", "step", "source", "agave"};
python/agave_model.py's `load(OUT.pt)` builds the model from "config" and loads "state_dict",
whose names are agave's own parameter and buffer names. Needs python3-torch and python3-h5py.
"""

import argparse
import hashlib
import json
import os
import sys
from collections import OrderedDict

import h5py
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import agave_model  # noqa: E402  (found through the path above)


class ExportError(Exception):
    pass


def resolve_checkpoint(path):
    """A checkpoint folder, or the newest complete one under a run folder or its checkpoints/."""
    if os.path.isfile(os.path.join(path, "manifest.json")):
        return path
    for root in (path, os.path.join(path, "checkpoints")):
        latest = os.path.join(root, "latest")
        if os.path.isfile(latest):
            with open(latest) as f:
                name = f.read().strip()
            if os.path.isfile(os.path.join(root, name, "manifest.json")):
                return os.path.join(root, name)
    raise ExportError(f"{path}: not a checkpoint (no manifest.json) and holds none")


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_tensors(ckpt, manifest, names):
    """name → torch tensor for `names` (checkpoint keys), each read from the shard holding it."""
    shards = manifest["shards"]
    by_shard = {}
    for name in names:
        by_shard.setdefault(manifest["tensors"][name], []).append(name)
    out = {}
    for index, wanted in sorted(by_shard.items()):
        entry = shards[index]
        path = os.path.join(ckpt, entry["file"])
        # A shard changed on disk would export wrong weights silently; agave refuses it too.
        if sha256_of(path) != entry["sha256"]:
            raise ExportError(f"{path}: SHA-256 does not match manifest.json (corrupt shard)")
        with h5py.File(path, "r") as f:
            for name in wanted:
                out[name] = torch.from_numpy(f[name][()])
    return out


def folded(model):
    """The state_dict of `model` with every weight-norm layer's (v, g, b) as (weight, bias)."""
    out = OrderedDict()
    wn = {name: m for name, m in model.named_modules()
          if isinstance(m, agave_model.WeightNormConv2d)}
    for key, value in model.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        if prefix in wn and leaf in ("v", "g", "b"):
            m = wn[prefix]
            if leaf == "v":
                out[prefix + ".weight"] = agave_model.fold_weight(m.v, m.g, m.transposed).detach()
            elif leaf == "b":
                out[prefix + ".bias"] = value
            continue
        out[key] = value
    return out


def export(checkpoint, out_path, live=False, fold=False):
    ckpt = resolve_checkpoint(checkpoint)
    with open(os.path.join(ckpt, "manifest.json")) as f:
        manifest = json.load(f)
    cfg = agave_model.AgaveConfig.from_signature(manifest["model_signature"])
    names = manifest["tensors"]
    model_keys = [n for n in names if n.startswith("model/")]
    # Parameters have an EMA shadow; buffers (IAF masks) do not and always come from model/.
    chosen = {}
    for key in model_keys:
        name = key[len("model/"):]
        ema = "ema/" + name
        if not live and ema in names:
            chosen[name] = ema
        else:
            chosen[name] = key
    if not live and not any(k.startswith("ema/") for k in names):
        raise ExportError(f"{ckpt}: holds no EMA weights; export the trained ones with --live")
    tensors = read_tensors(ckpt, manifest, sorted(set(chosen.values())))
    state = OrderedDict((name, tensors[key]) for name, key in sorted(chosen.items()))

    # Loading into the reference module checks every name and shape both ways: a weight agave
    # has and the module lacks (or the reverse) stops the export here, not in a user's script.
    model = agave_model.Agave(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ExportError(f"{ckpt}: the weights do not match python/agave_model.py: {e}") from e
    if fold:
        state = folded(model)
        cfg.fold_weight_norm = True

    torch.save({
        "format": "agave-torch-1",
        "state_dict": state,
        "config": cfg.to_dict(),
        "weights": "live" if live else "ema",
        "weight_norm": "folded" if fold else "kept",
        "step": manifest.get("step"),
        "seed": manifest.get("seed"),
        "source": os.path.abspath(ckpt),
        "agave": manifest.get("agave"),
    }, out_path)
    return ckpt, state


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Export an agave checkpoint's weights as a PyTorch state_dict, loadable "
                    "with python/agave_model.py (names: docs/pytorch.md).")
    p.add_argument("checkpoint", help="checkpoint folder (with manifest.json), or a run folder "
                                      "or its checkpoints/ (the newest complete one is used)")
    p.add_argument("out", help="the .pt file to write")
    p.add_argument("--live", action="store_true",
                   help="export the trained weights instead of the EMA (Polyak) ones")
    p.add_argument("--fold-weight-norm", action="store_true",
                   help="store each weight-normalised layer as weight = g·v/‖v‖ and bias, like "
                        "nn.Conv2d, instead of agave's v, g, b")
    a = p.parse_args(argv)
    try:
        ckpt, state = export(a.checkpoint, a.out, a.live, a.fold_weight_norm)
    except (ExportError, KeyError, OSError) as e:
        print(f"agave_to_torch: error: {e}", file=sys.stderr)
        return 2
    n = sum(t.numel() for t in state.values())
    print(f"agave_to_torch: {ckpt} → {a.out}: {len(state)} tensors, {n} values, "
          f"{'live' if a.live else 'EMA'} weights, weight norm "
          f"{'folded' if a.fold_weight_norm else 'kept (v, g, b)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
