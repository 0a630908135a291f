#include "data/convert.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>
#include <thread>

#include "data/errors.h"
#include "data/shard.h"
#include "data/sources.h"

namespace agave::data {

namespace fs = std::filesystem;

namespace {

std::string shard_name(const std::string& split, int64_t i, int64_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "-%05lld-of-%05lld.h5", static_cast<long long>(i),
                static_cast<long long>(n));
  return split + buf;
}

// Removes shards of earlier conversions of this split, complete or not, so the folder holds
// exactly what the new manifest lists.
void remove_old_split(const std::string& dir, const std::string& split) {
  std::error_code ec;
  fs::remove(manifest_path(dir, split), ec);
  const std::regex pattern(split + R"(-\d{5}-of-\d{5}\.h5(\.tmp)?)");
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (std::regex_match(e.path().filename().string(), pattern)) fs::remove(e.path(), ec);
  }
}

Manifest convert_split(SplitSource& src, const ConvertOptions& opt, Dataset dataset,
                       const ProgressFn& progress) {
  const std::string& dir = opt.output;
  const std::string split = src.split();
  remove_old_split(dir, split);
  const int64_t total = src.count();
  const int64_t per = opt.images_per_shard;
  const int64_t nshards = (total + per - 1) / per;
  const ImageShape shape = src.shape();
  const int64_t image_bytes = shape.channels * shape.height * shape.width;

  Manifest m;
  m.path = manifest_path(dir, split);
  m.dataset = dataset_name(dataset);
  m.split = split;
  m.source = src.description();
  m.shape = shape;
  m.count = total;

  std::vector<std::string> tmp_files;
  try {
    // About 8 MiB per read: large enough for throughput, small enough to not matter for memory.
    const int64_t step = std::max<int64_t>(1, (8 << 20) / image_bytes);
    std::vector<uint8_t> images(static_cast<size_t>(step * image_bytes));
    std::vector<uint8_t> labels(static_cast<size_t>(step));
    int64_t done = 0;
    if (progress) progress({"convert " + split, 0, total});
    for (int64_t s = 0; s < nshards; ++s) {
      const std::string name = shard_name(split, s, nshards);
      const std::string final_path = (fs::path(dir) / name).string();
      ShardWriteOptions w;
      w.dataset = m.dataset;
      w.source = m.source;
      w.split = split;
      w.shape = shape;
      w.first_index = s * per;
      w.count = std::min(per, total - w.first_index);
      w.chunk_images = opt.chunk_images;
      w.compression = opt.compression;
      w.rename_on_finish = false;
      ShardWriter writer(final_path, w);
      tmp_files.push_back(final_path + ".tmp");
      while (writer.written() < w.count) {
        const int64_t want = std::min(step, w.count - writer.written());
        const int64_t got = src.read(images.data(), labels.data(), want);
        if (got != want) {
          throw io::DataError(src.description(), "source ended after " +
                                                     std::to_string(done + got) + " of " +
                                                     std::to_string(total) + " images");
        }
        writer.append(images.data(), labels.data(), got);
        done += got;
        if (progress) progress({"convert " + split, done, total});
      }
      const ShardInfo info = writer.finish();
      m.shards.push_back(ManifestShard{name, info.count, info.first_index, info.sha256});
    }
    for (const auto& t : tmp_files) {
      const std::string final_path = t.substr(0, t.size() - 4);
      std::error_code ec;
      fs::rename(t, final_path, ec);
      if (ec)
        throw io::DataError(final_path, "cannot rename " + t + " into place: " + ec.message());
    }
    write_manifest(m.path, m);
  } catch (...) {
    std::error_code ec;
    for (const auto& t : tmp_files) fs::remove(t, ec);
    remove_old_split(dir, split);
    throw;
  }
  return m;
}

}  // namespace

std::vector<Manifest> convert(const ConvertOptions& opt, const ProgressFn& progress) {
  if (opt.images_per_shard <= 0) {
    throw io::DataError(
        "", "images per shard must be positive, got " + std::to_string(opt.images_per_shard));
  }
  if (opt.compression < 0 || opt.compression > 9) {
    throw io::DataError("", "gzip level must be 0..9, got " + std::to_string(opt.compression));
  }
  std::error_code ec;
  if (!fs::exists(opt.source, ec)) throw io::DataError(opt.source, "source not found");
  const std::optional<Dataset> dataset = opt.dataset ? opt.dataset : detect_dataset(opt.source);
  if (!dataset) {
    throw io::DataError(opt.source, "cannot tell the data set: no CIFAR-10 *.bin batches, no " +
                                        std::string(kCifarTarName) +
                                        ", no train-images-idx3-ubyte[.gz]");
  }
  // All sources are opened (and their sizes checked) before anything is written.
  auto splits = open_source(*dataset, opt.source);
  fs::create_directories(opt.output, ec);
  if (ec) throw io::DataError(opt.output, "cannot create output folder: " + ec.message());
  std::vector<Manifest> out;
  for (auto& s : splits) out.push_back(convert_split(*s, opt, *dataset, progress));
  return out;
}

bool shards_ready(const std::string& dir, Dataset dataset) {
  for (const char* split : {"train", "test"}) {
    std::error_code ec;
    const std::string p = manifest_path(dir, split);
    if (!fs::exists(p, ec)) return false;
    try {
      if (read_manifest(p).dataset != dataset_name(dataset)) return false;
    } catch (const io::DataError&) {
      return false;
    }
  }
  return true;
}

namespace {
// flock() on a file in the shard folder: released by the kernel if the holder dies. The holder
// writes its host and pid into it, so a waiter can say whom it waits for.
class FileLock {
 public:
  // Waits for the lock at most `timeout_seconds`, calling `progress` (which may throw to abandon
  // the wait: the trainer's stop check) about every second while another process holds it.
  FileLock(const std::string& path, double timeout_seconds, const ProgressFn& progress)
      : path_(path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd_ < 0)
      throw io::DataError(path, std::string("cannot create lock file: ") + std::strerror(errno));
    try {
      acquire(timeout_seconds, progress);
    } catch (...) {
      ::close(fd_);
      throw;
    }
    char host[256] = {0};
    ::gethostname(host, sizeof(host) - 1);
    const std::string me = std::string(host) + " pid " + std::to_string(::getpid()) + "\n";
    // Only the holder's name for a waiter's message: the lock holds whether this works or not.
    if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
    }
  }
  ~FileLock() { ::close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  // bound: `timeout_seconds` and the caller's stop check (polled, never a blocking flock).
  void acquire(double timeout_seconds, const ProgressFn& progress) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    auto next_report = start;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {  // bound: LOCK_NB, polled until the deadline
      if (errno != EWOULDBLOCK && errno != EINTR) {
        throw io::DataError(path_, std::string("cannot lock: ") + std::strerror(errno));
      }
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      if (waited >= timeout_seconds) {
        throw io::DataError(path_, "held by " + holder() + " for more than " +
                                       std::to_string(static_cast<long long>(timeout_seconds)) +
                                       " s (cluster.timeout_seconds): another job converts into " +
                                       "this folder; run again when it has finished, or set " +
                                       "another data.shards");
      }
      if (progress && Clock::now() >= next_report) {
        progress({"waiting for " + holder() + " to finish converting", static_cast<int64_t>(waited),
                  static_cast<int64_t>(timeout_seconds)});
        next_report = Clock::now() + std::chrono::seconds(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  std::string holder() const {
    char buf[300] = {0};
    const ssize_t n = ::pread(fd_, buf, sizeof(buf) - 1, 0);
    std::string who = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "another process";
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    return who.empty() ? "another process" : who;
  }

  std::string path_;
  int fd_ = -1;
};
}  // namespace

std::string ensure_shards(const DataOptions& options, const ProgressFn& progress,
                          double lock_timeout_seconds) {
  if (shards_ready(options.shards, options.dataset)) return options.shards;
  std::error_code ec;
  fs::create_directories(options.shards, ec);
  if (ec) throw io::DataError(options.shards, "cannot create shard folder: " + ec.message());
  FileLock lock((fs::path(options.shards) / ".convert.lock").string(), lock_timeout_seconds,
                progress);
  // Another process may have converted while we waited for the lock.
  if (shards_ready(options.shards, options.dataset)) return options.shards;
  for (const char* split : {"train", "test"}) {
    const std::string p = manifest_path(options.shards, split);
    if (fs::exists(p, ec)) {
      const Manifest m = read_manifest(p);
      if (m.dataset != dataset_name(options.dataset)) {
        throw io::DataError(
            p, "shard folder holds " + m.dataset + ", but the configuration asks for " +
                   dataset_name(options.dataset) + " (use another data.shards folder)");
      }
    }
  }
  ConvertOptions c;
  c.dataset = options.dataset;
  c.source = options.source;
  c.output = options.shards;
  c.images_per_shard = options.images_per_shard;
  c.compression = options.compression;
  convert(c, progress);
  return options.shards;
}

}  // namespace agave::data
