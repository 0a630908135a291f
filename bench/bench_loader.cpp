// Loader throughput from HDF5 shards against a raw read of the same image bytes from one flat
// file, both in this process on a warm page cache, so the ratio shows the loader's own cost
// (shuffle, chunk lookup, batching, the prefetch queue) rather than the disk.
//
//   bench_loader [CIFAR10_DIR] [--seconds S] [--batch B] [--gzip LEVEL]
// Goal (issue 3): loader >= 0.8 x raw and >= 100 000 CIFAR images/s on one core.
#include <fcntl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "data/convert.h"
#include "data/loader.h"
#include "data/manifest.h"
#include "data/shard.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Sequential batches from the flat file into fresh tensors, as a loader would hand them out.
double raw_images_per_second(const std::string& flat, int64_t n, int64_t image_bytes, int64_t batch,
                             double min_seconds) {
  const int fd = ::open(flat.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(flat + ": cannot open");
  int64_t images = 0;
  const auto t0 = Clock::now();
  do {
    for (int64_t first = 0; first + batch <= n; first += batch) {
      auto t = torch::empty({batch, image_bytes}, torch::kUInt8);
      const size_t want = static_cast<size_t>(batch * image_bytes);
      if (::pread(fd, t.data_ptr<uint8_t>(), want, static_cast<off_t>(first * image_bytes)) !=
          static_cast<ssize_t>(want)) {
        throw std::runtime_error(flat + ": short read");
      }
      images += batch;
    }
  } while (seconds_since(t0) < min_seconds);
  const double rate = static_cast<double>(images) / seconds_since(t0);
  ::close(fd);
  return rate;
}

double loader_images_per_second(const std::string& dir, agave::data::LoaderOptions o,
                                double min_seconds, double* wait_share) {
  agave::data::ShardLoader loader(dir, "train", o);
  int64_t images = 0;
  // One untimed epoch start: thread start-up and the first prefetch are not throughput.
  loader.next();
  const double wait0 = loader.wait_seconds();
  const auto t0 = Clock::now();
  do {
    while (auto b = loader.next()) images += b->images.size(0);
  } while (seconds_since(t0) < min_seconds);
  const double elapsed = seconds_since(t0);
  *wait_share = (loader.wait_seconds() - wait0) / elapsed;
  return static_cast<double>(images) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  std::string src = (fs::path(__FILE__).parent_path() / "../../shared/data/cifar10").string();
  double min_seconds = 2.0;
  int64_t batch = 64;
  int gzip = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      min_seconds = std::atof(argv[++i]);
    } else if (a == "--batch" && i + 1 < argc) {
      batch = std::atoll(argv[++i]);
    } else if (a == "--gzip" && i + 1 < argc) {
      gzip = std::atoi(argv[++i]);
    } else {
      src = a;
    }
  }
  if (!fs::exists(fs::path(src) / "data_batch_1.bin")) {
    std::fprintf(stderr, "bench_loader: no CIFAR-10 binary batches in %s (pass the folder)\n",
                 src.c_str());
    return 1;
  }
  torch::set_num_threads(1);
  std::string tmpl = (fs::temp_directory_path() / "agave-bench-loader-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return 1;
  const fs::path work = tmpl;
  int rc = 0;
  try {
    agave::data::ConvertOptions c;
    c.source = src;
    c.output = (work / "shards").string();
    c.compression = gzip;
    auto t0 = Clock::now();
    const auto manifests = agave::data::convert(c);
    const agave::data::Manifest& train = manifests.at(0);
    std::printf("converted %lld train images (%s) in %.2f s\n", static_cast<long long>(train.count),
                gzip ? "gzip" : "raw", seconds_since(t0));

    // The flat baseline: exactly the shard's image bytes, concatenated.
    const std::string flat = (work / "train.u8").string();
    std::FILE* f = std::fopen(flat.c_str(), "wb");
    for (const auto& s : train.shards) {
      agave::data::ShardReader r(train.shard_path(s));
      const int64_t bytes = r.info().image_bytes();
      r.for_each_block([&](const uint8_t* p, int64_t, int64_t n) {
        std::fwrite(p, 1, static_cast<size_t>(n * bytes), f);
      });
    }
    std::fclose(f);
    const int64_t image_bytes = train.shape.channels * train.shape.height * train.shape.width;

    const double raw = raw_images_per_second(flat, train.count, image_bytes, batch, min_seconds);
    std::printf("raw flat-file read     : %10.0f images/s  (%.2f GB/s), batch %lld\n", raw,
                raw * static_cast<double>(image_bytes) / 1e9, static_cast<long long>(batch));

    agave::data::LoaderOptions o;
    o.batch_size = batch;
    o.seed = 7;
    o.prefetch = 4;
    o.shuffle = true;
    double wait = 0;
    const double one = loader_images_per_second(c.output, o, min_seconds, &wait);
    std::printf(
        "loader, 1 rank, shuffle: %10.0f images/s  ratio %.2f of raw, next() waited %.0f%%\n", one,
        one / raw, 100 * wait);
    o.world = 4;
    o.rank = 3;
    const double four = loader_images_per_second(c.output, o, min_seconds, &wait);
    std::printf("loader, rank 3 of 4    : %10.0f images/s  ratio %.2f of raw\n", four, four / raw);
    o.world = 1;
    o.rank = 0;
    o.shuffle = false;
    const double seq = loader_images_per_second(c.output, o, min_seconds, &wait);
    std::printf("loader, no shuffle     : %10.0f images/s  ratio %.2f of raw\n", seq, seq / raw);
    const bool ok = one >= 0.8 * raw && one >= 100000;
    std::printf("goal (>= 0.8 of raw and >= 100000 images/s): %s\n", ok ? "met" : "NOT met");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_loader: %s\n", e.what());
    rc = 1;
  }
  std::error_code ec;
  fs::remove_all(work, ec);
  return rc;
}
