#include "data/loader.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "data/errors.h"
#include "data/shard.h"

namespace agave::data {

namespace {

// SplitMix64: tiny, fast and fully specified, so an epoch's order is the same on every machine
// and library version (std::uniform_int_distribution is not).
uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t s = a ^ (b * 0xD6E8FEB86659FD93ull + 0x632BE59BD9B4E019ull);
  return splitmix(s);
}

template <typename T>
void shuffle(std::vector<T>& v, size_t begin, size_t end, uint64_t state) {
  for (size_t i = end - begin; i > 1; --i) {
    const size_t j =
        static_cast<size_t>((static_cast<unsigned __int128>(splitmix(state)) * i) >> 64);
    std::swap(v[begin + i - 1], v[begin + j]);
  }
}

struct Block {
  int shard = 0;
  int64_t first = 0;         // within the shard
  int64_t count = 0;         // images
  int64_t global_first = 0;  // within the split
  ChunkLocation loc;
  bool direct = false;
};

struct ShardFile {
  ShardReader reader;
  int fd = -1;
  int64_t first_block = 0;
  int64_t block_images = 0;
};

// This rank's images of one epoch, in the order they are yielded, and the positions where a
// new window (a new set of chunks) starts.
struct EpochPlan {
  std::vector<int64_t> order;
  std::vector<int64_t> window_starts;
};

struct Item {
  std::optional<Batch> batch;
  std::exception_ptr error;  // set: the thread stopped on this error
  // Neither: the end of an epoch.
};

}  // namespace

struct ShardLoader::Impl {
  Manifest manifest;
  LoaderOptions opt;
  ImageShape shape;
  int64_t image_bytes = 0;
  int64_t total = 0;
  std::vector<ShardFile> shards;
  std::vector<Block> blocks;
  std::vector<uint8_t> labels;  // the whole split's labels: one byte per image
  int64_t window_blocks = 1;
  int64_t lo = 0, hi = 0;  // this rank's slice of the epoch order
  int64_t use = 0;         // images of the slice yielded per epoch
  bool pinned = false;

  // Consumer side.
  LoaderPosition pos;
  std::exception_ptr failed;
  double waited = 0;

  // Queue between the thread and next().
  std::mutex mu;
  std::condition_variable not_empty, not_full;
  std::deque<Item> queue;
  bool stop = false;
  std::thread worker;

  ~Impl() {
    halt();
    for (auto& s : shards) {
      if (s.fd >= 0) ::close(s.fd);
    }
  }

  void halt() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    not_full.notify_all();
    not_empty.notify_all();
    if (worker.joinable()) worker.join();
    queue.clear();
    stop = false;
  }

  void start(LoaderPosition from) {
    worker = std::thread([this, from] { run(from); });
  }

  bool push(Item item) {
    std::unique_lock<std::mutex> lock(mu);
    not_full.wait(lock, [&] {
      return stop || static_cast<int64_t>(queue.size()) < std::max<int64_t>(1, opt.prefetch);
    });
    if (stop) return false;
    queue.push_back(std::move(item));
    not_empty.notify_one();
    return true;
  }

  int64_t block_of(int64_t g) const {
    // Shards are few; a linear scan from the back beats a map for them.
    int s = static_cast<int>(shards.size()) - 1;
    while (s > 0 && manifest.shards[s].first_index > g) --s;
    const ShardFile& f = shards[s];
    return f.first_block + (g - manifest.shards[s].first_index) / f.block_images;
  }

  EpochPlan plan(int64_t epoch) const {
    EpochPlan p;
    const int64_t nblocks = static_cast<int64_t>(blocks.size());
    std::vector<int64_t> perm(nblocks);
    for (int64_t i = 0; i < nblocks; ++i) perm[i] = i;
    const uint64_t epoch_seed = mix(opt.seed, static_cast<uint64_t>(epoch));
    if (opt.shuffle) shuffle(perm, 0, perm.size(), epoch_seed);
    // This rank's slice [lo, hi) of the chunk-permuted order, as pieces of chunks.
    struct Piece {
      int64_t global_first, count;
    };
    std::vector<Piece> pieces;
    int64_t at = 0;
    for (int64_t i = 0; i < nblocks && at < hi; ++i) {
      const Block& blk = blocks[perm[i]];
      const int64_t from = std::max(lo - at, int64_t{0});
      const int64_t to = std::min(blk.count, hi - at);
      if (from < to) pieces.push_back({blk.global_first + from, to - from});
      at += blk.count;
    }
    // Windows are formed within the slice, so a rank touches each of its chunks in one window
    // only and never reads a chunk for another rank's images.
    const size_t k = opt.shuffle ? static_cast<size_t>(window_blocks) : 1;
    const uint64_t rank_seed = mix(epoch_seed, static_cast<uint64_t>(lo) + 1);
    p.order.reserve(static_cast<size_t>(hi - lo));
    for (size_t w = 0; w * k < pieces.size(); ++w) {
      const size_t begin = p.order.size();
      p.window_starts.push_back(static_cast<int64_t>(begin));
      for (size_t i = w * k; i < std::min(pieces.size(), (w + 1) * k); ++i) {
        for (int64_t j = 0; j < pieces[i].count; ++j) p.order.push_back(pieces[i].global_first + j);
      }
      if (opt.shuffle) shuffle(p.order, begin, p.order.size(), mix(rank_seed, w));
    }
    return p;
  }

  void read_block(const Block& b, std::vector<uint8_t>& out, std::vector<uint8_t>& scratch) {
    const ShardFile& f = shards[b.shard];
    const std::string& path = f.reader.info().path;
    const size_t full = static_cast<size_t>(f.block_images * image_bytes);
    out.resize(std::max(full, static_cast<size_t>(b.count * image_bytes)));
    if (!b.direct) {
      f.reader.read_images(b.first, b.count, out.data());
      return;
    }
    uint8_t* dst = out.data();
    if (b.loc.deflated) {
      scratch.resize(b.loc.stored_bytes);
      dst = scratch.data();
    } else if (b.loc.stored_bytes != full) {
      throw DataError(path, "chunk at image " + std::to_string(b.first) + " stores " +
                                std::to_string(b.loc.stored_bytes) + " bytes, " +
                                std::to_string(full) + " expected");
    }
    size_t done = 0;
    while (done < b.loc.stored_bytes) {
      const ssize_t r = ::pread(f.fd, dst + done, b.loc.stored_bytes - done,
                                static_cast<off_t>(b.loc.offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        throw DataError(path, "cannot read chunk at image " + std::to_string(b.first) + ": " +
                                  (r == 0 ? std::string("file ends early (truncated?)")
                                          : std::string(std::strerror(errno))));
      }
      done += static_cast<size_t>(r);
    }
    if (b.loc.deflated) {
      uLongf len = static_cast<uLongf>(full);
      const int rc = ::uncompress(out.data(), &len, scratch.data(), static_cast<uLong>(done));
      if (rc != Z_OK || len != full) {
        throw DataError(path, "chunk at image " + std::to_string(b.first) +
                                  " does not inflate to " + std::to_string(full) +
                                  " bytes (corrupt gzip data)");
      }
    }
  }

  void run(LoaderPosition from) {
    try {
      const int64_t b = opt.batch_size;
      std::unordered_map<int64_t, std::vector<uint8_t>> cache;
      std::vector<std::vector<uint8_t>> spare;  // buffers reused across windows
      std::vector<uint8_t> scratch;
      for (int64_t epoch = from.epoch;; ++epoch) {
        const EpochPlan p = plan(epoch);
        int64_t index = epoch == from.epoch ? from.index : 0;
        size_t next_window = 0;
        for (int64_t start = index * b; start < use; start += b, ++index) {
          const int64_t n = std::min(b, use - start);
          auto opts = torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(pinned);
          Batch batch;
          batch.images = torch::empty({n, shape.channels, shape.height, shape.width}, opts);
          batch.labels = torch::empty({n}, torch::kInt64);
          batch.indices = torch::empty({n}, torch::kInt64);
          batch.epoch = epoch;
          batch.index = index;
          uint8_t* img = batch.images.data_ptr<uint8_t>();
          int64_t* lab = batch.labels.data_ptr<int64_t>();
          int64_t* idx = batch.indices.data_ptr<int64_t>();
          for (int64_t i = 0; i < n; ++i) {
            const int64_t at = start + i;
            // Entering a new window: the previous window's chunks are never needed again.
            while (next_window < p.window_starts.size() && p.window_starts[next_window] <= at) {
              for (auto& [id, buf] : cache) spare.push_back(std::move(buf));
              cache.clear();
              ++next_window;
            }
            const int64_t g = p.order[static_cast<size_t>(at)];
            const int64_t bi = block_of(g);
            auto it = cache.find(bi);
            if (it == cache.end()) {
              std::vector<uint8_t> buf;
              if (!spare.empty()) {
                buf = std::move(spare.back());
                spare.pop_back();
              }
              read_block(blocks[bi], buf, scratch);
              it = cache.emplace(bi, std::move(buf)).first;
            }
            const Block& blk = blocks[bi];
            std::memcpy(img + i * image_bytes,
                        it->second.data() + (g - blk.global_first) * image_bytes,
                        static_cast<size_t>(image_bytes));
            lab[i] = labels[static_cast<size_t>(g)];
            idx[i] = g;
          }
          if (!push(Item{std::move(batch), nullptr})) return;
        }
        if (!push(Item{})) return;
      }
    } catch (...) {
      push(Item{std::nullopt, std::current_exception()});
    }
  }
};

ShardLoader::ShardLoader(const std::string& manifest_or_dir, const std::string& split,
                         LoaderOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.opt = options;
  m.manifest = open_manifest(manifest_or_dir, split);
  const Manifest& man = m.manifest;
  const LoaderOptions& o = m.opt;
  if (o.world < 1 || o.rank < 0 || o.rank >= o.world) {
    throw DataError(man.path, "rank " + std::to_string(o.rank) + " of world " +
                                  std::to_string(o.world) + " is not a valid rank");
  }
  if (o.batch_size < 1) {
    throw DataError(man.path, "batch size must be positive, got " + std::to_string(o.batch_size));
  }
  m.shape = man.shape;
  m.image_bytes = man.shape.channels * man.shape.height * man.shape.width;
  m.total = man.count;
  m.labels.resize(static_cast<size_t>(man.count));

  int64_t max_block = 1;
  for (size_t s = 0; s < man.shards.size(); ++s) {
    const ManifestShard& ms = man.shards[s];
    const std::string path = man.shard_path(ms);
    ShardReader reader(path);
    const ShardInfo& info = reader.info();
    if (info.count != ms.count) {
      throw DataError(path, "holds " + std::to_string(info.count) + " images, the manifest " +
                                man.path + " says " + std::to_string(ms.count));
    }
    if (info.shape.channels != man.shape.channels || info.shape.height != man.shape.height ||
        info.shape.width != man.shape.width) {
      throw DataError(path, "image shape differs from the manifest's");
    }
    if (!ms.sha256.empty() && info.sha256 != ms.sha256) {
      throw ChecksumError(path, "checksum attribute " + info.sha256 +
                                    " differs from the manifest's " + ms.sha256 +
                                    " (shard replaced or rewritten?)");
    }
    const auto lab = reader.read_labels();
    std::copy(lab.begin(), lab.end(), m.labels.begin() + ms.first_index);
    const auto locs = reader.chunk_locations();
    ShardFile f{std::move(reader), -1, static_cast<int64_t>(m.blocks.size()), 0};
    f.block_images = f.reader.block_images();
    max_block = std::max(max_block, f.block_images);
    if (locs) {
      f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (f.fd < 0) throw DataError(path, std::string("cannot open: ") + std::strerror(errno));
    }
    for (int64_t first = 0, c = 0; first < ms.count; first += f.block_images, ++c) {
      Block b;
      b.shard = static_cast<int>(s);
      b.first = first;
      b.count = std::min(f.block_images, ms.count - first);
      b.global_first = ms.first_index + first;
      if (locs) {
        b.loc = (*locs)[static_cast<size_t>(c)];
        b.direct = true;
      }
      m.blocks.push_back(b);
    }
    m.shards.push_back(std::move(f));
  }
  m.window_blocks = std::max<int64_t>(1, (o.shuffle_window + max_block - 1) / max_block);

  const int64_t q = m.total / o.world, rem = m.total % o.world;
  m.lo = o.rank * q + std::min(o.rank, rem);
  m.hi = m.lo + q + (o.rank < rem ? 1 : 0);
  m.use = o.drop_last ? q / o.batch_size * o.batch_size : m.hi - m.lo;
  if (m.use == 0) {
    throw DataError(man.path, "split '" + man.split + "' has " + std::to_string(m.total) +
                                  " images: too few for " + std::to_string(o.world) +
                                  " ranks with batches of " + std::to_string(o.batch_size));
  }
  m.pinned = o.pin_memory && torch::cuda::is_available();
  m.start(m.pos);
}

ShardLoader::~ShardLoader() = default;

std::optional<Batch> ShardLoader::next() {
  Impl& m = *impl_;
  if (m.failed) std::rethrow_exception(m.failed);
  Item item;
  {
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(m.mu);
    m.not_empty.wait(lock, [&] { return !m.queue.empty(); });
    item = std::move(m.queue.front());
    m.queue.pop_front();
    m.not_full.notify_one();
    m.waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (item.error) {
    m.failed = item.error;
    std::rethrow_exception(item.error);
  }
  if (!item.batch) {
    m.pos = LoaderPosition{m.pos.epoch + 1, 0};
    return std::nullopt;
  }
  m.pos = LoaderPosition{item.batch->epoch, item.batch->index + 1};
  return std::move(item.batch);
}

LoaderPosition ShardLoader::position() const { return impl_->pos; }

void ShardLoader::restore(const LoaderPosition& p) {
  Impl& m = *impl_;
  if (p.epoch < 0 || p.index < 0 || p.index > batches_per_epoch()) {
    throw DataError(m.manifest.path, "cannot restore loader position (epoch " +
                                         std::to_string(p.epoch) + ", batch " +
                                         std::to_string(p.index) + "): an epoch has " +
                                         std::to_string(batches_per_epoch()) + " batches");
  }
  m.halt();
  m.failed = nullptr;
  m.pos = p;
  m.start(p);
}

int64_t ShardLoader::batches_per_epoch() const {
  return (impl_->use + impl_->opt.batch_size - 1) / impl_->opt.batch_size;
}
int64_t ShardLoader::images_per_epoch() const { return impl_->use; }
int64_t ShardLoader::split_size() const { return impl_->total; }
ImageShape ShardLoader::image_shape() const { return impl_->shape; }
const Manifest& ShardLoader::manifest() const { return impl_->manifest; }
const LoaderOptions& ShardLoader::options() const { return impl_->opt; }
double ShardLoader::wait_seconds() const { return impl_->waited; }

}  // namespace agave::data
