#include "data/inspect.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "data/errors.h"
#include "data/manifest.h"
#include "data/shard.h"
#include "hdf5/header_probe.h"
#include "io/checksum.h"

namespace agave::data {

namespace fs = std::filesystem;

namespace {

struct Sums {
  std::vector<uint64_t> sum, sumsq;
  std::vector<int64_t> labels;
  int64_t images = 0;
};

// Reads one shard once: statistics always, the checksum when verifying.
ShardReport scan_shard(const std::string& path, const std::string& manifest_sha, bool verify,
                       Sums& sums, SplitReport& split, InspectReport& report,
                       const ProgressFn& progress) {
  ShardReport r;
  r.path = path;
  r.sha256_manifest = manifest_sha;
  try {
    hdf5::probe_shard_header(path);  // libhdf5 itself may crash on a crafted header
    ShardReader reader(path);
    const ShardInfo& info = reader.info();
    r.count = info.count;
    r.chunk_images = info.chunk_images;
    r.compression = info.compression;
    r.sha256_attribute = info.sha256;
    if (split.shape.channels == 0) split.shape = info.shape;
    const int64_t c = info.shape.channels, plane = info.shape.height * info.shape.width;
    sums.sum.resize(static_cast<size_t>(c), 0);
    sums.sumsq.resize(static_cast<size_t>(c), 0);
    io::Digest digest;
    const std::string stage = "inspect " + fs::path(path).filename().string();
    reader.for_each_block([&](const uint8_t* p, int64_t first, int64_t n) {
      if (verify) digest.update(p, static_cast<size_t>(n * c * plane));
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t ch = 0; ch < c; ++ch) {
          const uint8_t* q = p + (i * c + ch) * plane;
          uint64_t s = 0, s2 = 0;
          for (int64_t k = 0; k < plane; ++k) {
            s += q[k];
            s2 += static_cast<uint64_t>(q[k]) * q[k];
          }
          sums.sum[ch] += s;
          sums.sumsq[ch] += s2;
        }
      }
      if (progress) progress({stage, first + n, info.count});
    });
    const auto labels = reader.read_labels();
    for (uint8_t l : labels) {
      if (sums.labels.size() <= l) sums.labels.resize(l + 1u, 0);
      ++sums.labels[l];
    }
    sums.images += info.count;
    if (verify) {
      digest.update(labels.data(), labels.size());
      r.sha256_computed = digest.hex();
      if (r.sha256_computed != info.sha256) {
        report.problems.push_back(path + ": checksum mismatch: content hashes to " +
                                  r.sha256_computed + ", the shard records " + info.sha256);
      }
    }
    if (!manifest_sha.empty() && manifest_sha != info.sha256) {
      report.problems.push_back(path + ": checksum mismatch: the shard records " + info.sha256 +
                                ", its manifest " + manifest_sha);
    }
  } catch (const io::DataError& e) {
    report.problems.push_back(e.what());
  }
  return r;
}

void finish_stats(SplitReport& split, const Sums& sums) {
  const double plane = static_cast<double>(split.shape.height * split.shape.width);
  for (size_t ch = 0; ch < sums.sum.size(); ++ch) {
    const double n = plane * static_cast<double>(sums.images);
    const long double mean = static_cast<long double>(sums.sum[ch]) / n;
    const long double var = static_cast<long double>(sums.sumsq[ch]) / n - mean * mean;
    split.mean.push_back(static_cast<double>(mean / 255.0L));
    split.std.push_back(static_cast<double>(std::sqrt(std::max(var, 0.0L)) / 255.0L));
  }
  split.label_counts = sums.labels;
}

void inspect_manifest(const std::string& path, bool verify, InspectReport& report,
                      const ProgressFn& progress) {
  const Manifest m = read_manifest(path);
  SplitReport split;
  static_cast<SplitInfo&>(split) = m;
  split.manifest_path = path;
  Sums sums;
  for (const auto& s : m.shards) {
    ShardReport r = scan_shard(m.shard_path(s), s.sha256, verify, sums, split, report, progress);
    if (r.count != 0 && r.count != s.count) {
      report.problems.push_back(r.path + ": holds " + std::to_string(r.count) +
                                " images, the manifest says " + std::to_string(s.count));
    }
    split.shards.push_back(std::move(r));
  }
  finish_stats(split, sums);
  report.splits.push_back(std::move(split));
}

}  // namespace

InspectReport inspect(const std::string& path, bool verify, const ProgressFn& progress) {
  InspectReport report;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw io::DataError(path, "no such file or folder");
  if (fs::is_directory(path, ec)) {
    std::vector<std::string> manifests;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      const std::string name = e.path().filename().string();
      if (name.size() > 14 && name.substr(name.size() - 14) == ".manifest.json") {
        manifests.push_back(e.path().string());
      }
    }
    if (manifests.empty()) {
      throw io::DataError(path,
                          "holds no *.manifest.json (not a shard folder, or its conversion "
                          "did not finish)");
    }
    std::sort(manifests.begin(), manifests.end());
    for (const auto& m : manifests) inspect_manifest(m, verify, report, progress);
  } else if (path.size() > 5 && path.substr(path.size() - 5) == ".json") {
    inspect_manifest(path, verify, report, progress);
  } else {
    SplitReport split;
    Sums sums;
    ShardReport r = scan_shard(path, "", verify, sums, split, report, progress);
    // A problem already names the shard.
    if (r.count == 0) {
      throw io::DataError(report.problems.empty() ? path : "",
                          report.problems.empty() ? "unreadable shard" : report.problems.back());
    }
    ShardReader reader(path);
    split.dataset = reader.info().dataset;
    split.split = reader.info().split;
    split.source = reader.info().source;
    split.count = r.count;
    split.shards.push_back(std::move(r));
    finish_stats(split, sums);
    report.splits.push_back(std::move(split));
  }
  return report;
}

}  // namespace agave::data
