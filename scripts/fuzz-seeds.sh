#!/usr/bin/env bash
# Regenerates the seed part of fuzz/corpus/ from real files: a few Fashion-MNIST images (Debian's
# dataset-fashion-mnist) converted by the real converter into shards and manifests, the IDX and
# CIFAR-10 files themselves cut to a few records, a tar.gz made by GNU tar, the configs in
# configs/, and a checkpoint manifest in the writer's format. Needs build/bin/agave_data.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${AGAVE_BUILD_DIR:-build}/bin
fm=/usr/share/datasets/fashion-mnist
cifar=${AGAVE_CIFAR10:-../shared/data/cifar10}  # as the tests: tests/common/cifar10.h
out=fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# IDX: the first n images and labels of the real files, their headers' counts set to n.
idx_cut() {  # src dst header_bytes record_bytes n
  # (zcat ends on SIGPIPE once head has what it needs)
  (set +o pipefail; zcat "$1" | head -c $(( $3 + $4 * $5 )) > "$2")
  printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' 0 0 0 "$5")" |
    dd of="$2" bs=1 seek=4 conv=notrunc status=none
}
mkdir -p "$tmp/idx"
for p in train t10k; do
  idx_cut "$fm/$p-images-idx3-ubyte.gz" "$tmp/idx/$p-images-idx3-ubyte" 16 784 12
  idx_cut "$fm/$p-labels-idx1-ubyte.gz" "$tmp/idx/$p-labels-idx1-ubyte" 8 1 12
done
{ cat "$tmp/idx/train-images-idx3-ubyte"; printf '\n--labels--\n'; cat "$tmp/idx/train-labels-idx1-ubyte"; } \
  > "$out/idx/seed-plain"
gzip -9 -c "$tmp/idx/train-images-idx3-ubyte" > "$tmp/i.gz"
{ cat "$tmp/i.gz"; printf '\n--labels--\n'; cat "$tmp/idx/train-labels-idx1-ubyte"; } > "$out/idx/seed-gzip"

# Shards and manifests, written by the converter from those images.
"$bin/agave_data" convert -q --source "$tmp/idx" --output "$tmp/raw" --images-per-shard 8 --chunk-images 4
"$bin/agave_data" convert -q --source "$tmp/idx" --output "$tmp/gz" --images-per-shard 8 --chunk-images 4 --gzip 1
cp "$tmp/raw/train-00000-of-00002.h5" "$out/shard/seed-raw"
cp "$tmp/raw/train-00001-of-00002.h5" "$out/shard/seed-raw-partial-chunk"
cp "$tmp/gz/train-00000-of-00002.h5" "$out/shard/seed-gzip"
cp "$tmp/raw/train.manifest.json" "$out/manifest/seed-train"
cp "$tmp/gz/test.manifest.json" "$out/manifest/seed-test"

# CIFAR-10: two real records; and a tar.gz holding a one-record batch.
if [ -f "$cifar/data_batch_1.bin" ]; then
  head -c $(( 2 * 3073 )) "$cifar/data_batch_1.bin" > "$out/cifar/seed-two-records"
  mkdir -p "$tmp/t/cifar-10-batches-bin"
  head -c 3073 "$cifar/data_batch_1.bin" > "$tmp/t/cifar-10-batches-bin/data_batch_1.bin"
  head -c 3073 "$cifar/test_batch.bin" > "$tmp/t/cifar-10-batches-bin/test_batch.bin" 2>/dev/null ||
    head -c 3073 "$cifar/data_batch_2.bin" > "$tmp/t/cifar-10-batches-bin/test_batch.bin"
  echo "airplane" > "$tmp/t/cifar-10-batches-bin/batches.meta.txt"
  tar -C "$tmp/t" -czf "$out/tar/seed-targz" cifar-10-batches-bin
  tar -C "$tmp/t" -cf "$out/tar/seed-tar" cifar-10-batches-bin
fi

cp configs/*.yaml "$out/config/"

# A checkpoint manifest as ShardedCheckpoint::save writes it (2 ranks).
cat > "$out/checkpoint_manifest/seed-two-ranks" <<'JSON'
{
 "format": "agave-checkpoint-1",
 "step": 8,
 "phase": 1,
 "world_size": 2,
 "seed": 1,
 "loader": {"epoch": 0, "index": 8, "global_batch": 32},
 "model_signature": {"model.vae.depth": "2"},
 "config": {"loss": {"lambda": 2.0}},
 "shards": [
  {"file": "shard-00000-of-00002.h5", "sha256": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "bytes": 81234},
  {"file": "shard-00001-of-00002.h5", "sha256": "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9", "bytes": 80111}
 ],
 "tensors": {"model.vae.enc.weight": 0, "model.pixelcnn.out.bias": 1, "optimizer.step": 0},
 "rank_local": ["rng"]
}
JSON
ls -l "$out"/*
