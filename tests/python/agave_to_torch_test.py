"""AgaveToTorch: a tiny model trained by agave_trainer, exported by scripts/agave_to_torch.py and
evaluated by python/agave_model.py must give agave_eval's test bits/dim on 64 images within
1e-3 (EMA and live weights, weight norm kept and folded; Fashion-MNIST, and CIFAR-10 when the
shared copy is there).

The single-sample ELBO and the IW bound draw z ~ q(z|x). agave_eval draws them with LibTorch's
generator seeded by trainer/seed.h's formula; Debian's python3-torch is that same library, so
seeding it alike and drawing in agave's order (agave_model's docstring) gives the same z: the
comparison is deterministic, and what it measures is the model's arithmetic, not noise.

Exit code 77 (CTest: skipped) without python3-torch, python3-h5py or Fashion-MNIST.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

SKIP = 77
TOLERANCE = 1e-3  # bits/dim, the bar
# Same z, same arithmetic: the numbers agree to float rounding (measured ~5e-8 bits/dim). A tiny,
# briefly trained model shrugs off some wrong weights by less than 1e-3 (two swapped convs:
# 4e-4 to 8e-4 on Fashion-MNIST), so agreement is also held to this bar, far above rounding.
ROUNDING = 1e-5
IMAGES, K, BATCH = 64, 4, 32
FIELDS = ("elbo_bpd", "iw_bpd", "kl_bpd", "aux_bpd", "vae_bpd")
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

# The tiny run: two latent layers (the order of the draws matters), two IAF steps (masks are
# buffers; the channel order flips between steps), aux at half resolution (f(z) is upsampled)
# and an EMA that differs from the live weights (decay 0.5). The baselines train one joint phase.
CONFIG = """run: {{name: {name}, output_dir: {out}, seed: 7}}
data: {{dataset: {dataset}, {source}shards: {shards}}}
model:
  kind: {kind}
  vae: {{depth: 2, width: 8, latent_channels: 2, latent_resolution: {latent}, iaf_steps: 2}}
  pixelcnn: {{nr_resnet: 1, nr_filters: 8, nr_logistic_mix: 2, dropout: 0.0, conditioning: {conditioning}}}
aux: {{resolution: {aux}, color_bins: {bins}}}
train:
  batch_size: 16
  phases:
{phases}
  ema_decay: 0.5
eval: {{importance_samples: 1, subset: 8, final_subset: 8, batch_size: 8, sample_images: 0}}
checkpoint: {{every: 0, keep: 1}}
monitoring: {{log_every: 4, progress: plain, prometheus: false}}
cluster: {{threads_per_rank: 1}}
"""


def mpirun():
    cmd = ["mpirun", "--oversubscribe"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return cmd + ["-np", "1"]


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}")
    return r.stdout


def test_images(shards, n):
    """The first n images of the test split, in split order (what agave_eval --limit n reads)."""
    import h5py
    import numpy as np
    import torch

    with open(os.path.join(shards, "test.manifest.json")) as f:
        manifest = json.load(f)
    parts, left = [], n
    for shard in manifest["shards"]:
        with h5py.File(os.path.join(shards, shard["file"]), "r") as f:
            parts.append(f["images"][:left])
        left -= len(parts[-1])
        if left == 0:
            break
    return torch.from_numpy(np.concatenate(parts))


def compare(label, ours, theirs, failures):
    worst = 0.0
    # pixelcnn_only has no VAE bound (agave writes null, agave_model NaN).
    for key in (k for k in FIELDS if theirs[k] is not None):
        d = abs(ours[key] - theirs[key])
        worst = max(worst, d)
        print(f"  {label:32s} {key:9s} agave {theirs[key]:.6f}  torch {ours[key]:.6f}  "
              f"|Δ| {d:.2e}")
    if not worst <= TOLERANCE:  # also catches NaN
        failures.append(f"{label}: |Δ| {worst:.2e} > {TOLERANCE}")
    elif not worst <= ROUNDING:
        failures.append(f"{label}: |Δ| {worst:.2e} > {ROUNDING}: more than float rounding")
    return worst


def check_case(name, dataset, kind, conditioning, args, tmp, failures):
    import torch
    import agave_model
    import agave_to_torch

    out, shards = os.path.join(tmp, "runs"), os.path.join(tmp, name + "-shards")
    fmnist = dataset == "fashion_mnist"
    cfg = os.path.join(tmp, name + ".yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(
            name=name, out=out, dataset=dataset, shards=shards,
            source="" if fmnist else f"source: {args.cifar10}, ",
            latent=7 if fmnist else 8, kind=kind, conditioning=conditioning,
            aux=(28 if kind == "vae_only" else 14) if fmnist else 16,
            bins=256 if kind == "vae_only" else 32,
            phases=("    - {name: joint, steps: 8}" if kind != "agave" else
                    "    - {name: pretrain_vae, steps: 3}\n    - {name: joint, steps: 5}")))
    run(mpirun() + [os.path.join(args.bin_dir, "agave_trainer"), cfg])
    run_dir = os.path.join(out, name)

    evals = {}
    for weights in ("ema", "live"):
        js = os.path.join(tmp, f"{name}-{weights}.json")
        run(mpirun() + [os.path.join(args.bin_dir, "agave_eval"), "--threads", "1",
                        "--checkpoint", run_dir, "--limit", str(IMAGES), "--samples", str(K),
                        "--batch", str(BATCH), "--json", js]
            + (["--no-ema"] if weights == "live" else []))
        with open(js) as f:
            evals[weights] = json.load(f)
    seed = 7
    images = test_images(shards, IMAGES)
    assert images.shape[0] == IMAGES == evals["ema"]["images"], images.shape

    def evaluate(model):
        torch.manual_seed(agave_model.agave_eval_seed(seed))
        return model.evaluate(images, K, BATCH)

    worst = 0.0
    for weights, fold in (("ema", False), ("ema", True), ("live", False)):
        pt = os.path.join(tmp, f"{name}-{weights}-{'folded' if fold else 'kept'}.pt")
        agave_to_torch.export(run_dir, pt, live=weights == "live", fold=fold)
        blob = torch.load(pt)
        assert blob["weights"] == weights and blob["weight_norm"] == ("folded" if fold else "kept")
        model = agave_model.load(pt)
        label = f"{name} {weights} {'folded' if fold else 'kept'}"
        worst = max(worst, compare(label, evaluate(model), evals[weights], failures))

    # The comparison can fail: the EMA and live weights differ by more than the tolerance, and
    # a model with two same-shaped weights swapped by more than rounding.
    ema_model = agave_model.load(os.path.join(tmp, f"{name}-ema-kept.pt"))
    gap = abs(evaluate(ema_model)["elbo_bpd"] - evals["live"]["elbo_bpd"])
    print(f"  {name}: EMA export against agave's live ELBO: |Δ| {gap:.3f}")
    if not gap > TOLERANCE:
        failures.append(f"{name}: EMA and live weights are indistinguishable ({gap:.2e})")
    # The baselines leave one half unused (agave builds both): swaps there change nothing.
    swaps = []
    if kind != "vae_only":
        swaps.append(("pixelcnn.up_u.0.conv1.v", "pixelcnn.down_u.0.conv1.v"))
    if kind != "pixelcnn_only":
        swaps.append(("vae.layers.0.up_conv2.v", "vae.layers.1.up_conv2.v"))
    for a, b in swaps:
        state = ema_model.state_dict()
        state[a], state[b] = state[b].clone(), state[a].clone()
        swapped_model = agave_model.Agave(ema_model.cfg).eval()
        swapped_model.load_state_dict(state)
        r = evaluate(swapped_model)
        swapped = max(abs(r[key] - evals["ema"][key]) for key in FIELDS
                      if evals["ema"][key] is not None)
        print(f"  {name}: {a} and {b} swapped: largest |Δ| {swapped:.2e}")
        if not swapped > ROUNDING:
            failures.append(f"{name}: swapping {a} and {b} went unnoticed ({swapped:.2e})")
    # A missing or misnamed weight stops the load.
    state = torch.load(os.path.join(tmp, f"{name}-ema-kept.pt"))["state_dict"]
    state["vae.h_top_renamed"] = state.pop("vae.h_top")
    try:
        agave_model.Agave(ema_model.cfg).load_state_dict(state)
        failures.append(f"{name}: a misnamed weight loaded")
    except RuntimeError:
        pass
    return worst


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin-dir", required=True, help="folder holding agave_trainer and agave_eval")
    p.add_argument("--source-dir", required=True, help="the checkout (python/, scripts/)")
    p.add_argument("--cifar10", help="CIFAR-10 binary folder; the CIFAR-10 case runs when given "
                                     "and present")
    p.add_argument("--agave-torch", default="",
                   help="the LibTorch version agave was built with; the exact comparison needs "
                        "the same major.minor in Python (the same random draws)")
    args = p.parse_args()
    try:
        import h5py  # noqa: F401
        import torch
    except ImportError as e:
        print(f"skipped: {e} (apt-get install python3-torch python3-h5py)")
        return SKIP
    if args.agave_torch and args.agave_torch.split(".")[:2] != torch.__version__.split(".")[:2]:
        print(f"skipped: agave is built with LibTorch {args.agave_torch}, Python has torch "
              f"{torch.__version__}: their generators draw different z, so the comparison "
              "would not be exact")
        return SKIP
    if not os.path.isdir(FASHION_MNIST):
        print(f"skipped: {FASHION_MNIST} missing (apt-get install dataset-fashion-mnist)")
        return SKIP
    torch.set_num_threads(1)
    sys.path[:0] = [os.path.join(args.source_dir, "python"),
                    os.path.join(args.source_dir, "scripts")]

    cases = [("fmnist", "fashion_mnist", "agave", "shared"),
             ("fmnist-per-layer", "fashion_mnist", "agave", "per_layer"),
             ("fmnist-vae-only", "fashion_mnist", "vae_only", "shared"),
             ("fmnist-pixelcnn-only", "fashion_mnist", "pixelcnn_only", "shared")]
    if args.cifar10 and os.path.isfile(os.path.join(args.cifar10, "test_batch.bin")):
        cases.append(("cifar", "cifar10", "agave", "shared"))
        cases.append(("cifar-per-layer", "cifar10", "agave", "per_layer"))
    else:
        print(f"CIFAR-10 case skipped: no test_batch.bin in {args.cifar10}")
    failures = []
    with tempfile.TemporaryDirectory(prefix="agave-to-torch-") as tmp:
        for name, dataset, kind, conditioning in cases:
            worst = check_case(name, dataset, kind, conditioning, args, tmp, failures)
            print(f"{name}: largest |Δ| {worst:.2e} bits/dim (tolerance {TOLERANCE}, "
                  f"rounding bar {ROUNDING})")
    for f in failures:
        print("FAILED:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
