#include "data/loader.h"

#include "data/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <new>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "data/buffer_pool.h"
#include "data/epoch_plan.h"
#include "data/errors.h"
#include "data/image_copy.h"
#include "data/shard.h"
#include "hdf5/header_probe.h"
#include "io/bounds.h"
#include "io/checksum.h"

namespace agave::data {

namespace {

struct Block {
  int shard = 0;
  int64_t first = 0;         // within the shard
  int64_t count = 0;         // images
  int64_t global_first = 0;  // within the split
  ChunkLocation loc;
  bool direct = false;  // read from the mapping; otherwise through HDF5
};

struct ShardFile {
  explicit ShardFile(ShardReader r) : reader(std::move(r)) {}
  ShardReader reader;
  MappedFile file;  // the whole file, read-only; file.data() null: read through HDF5
  int64_t first_block = 0;
  int64_t block_images = 0;
  int64_t label_first = 0;  // the shard's first label in the split's labels
  // Content verification (LoaderOptions::verify_checksums): the SHA-256 to match, the chunks
  // hashed so far and the running digest.
  std::string expected_sha256;
  std::string identity;  // path, device, inode, size and mtime: what a verdict is cached for
  bool verified = false;
  int64_t hashed_blocks = 0;
  std::unique_ptr<io::Digest> digest;
};

// Shards whose content this process has already verified (by ShardFile::identity), so loaders
// opened again on the same files (each evaluation, the data-dependent init) do not hash again.
std::mutex& verified_mutex() {
  static std::mutex mu;
  return mu;
}
std::set<std::string>& verified_shards() {
  static std::set<std::string> set;
  return set;
}

std::string file_identity(const std::string& path, const std::string& sha) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return path + "|" + std::to_string(st.st_dev) + "|" + std::to_string(st.st_ino) + "|" +
         std::to_string(st.st_size) + "|" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + "|" + sha;
}

// Shard `info` (at path info.path) against its manifest entry `ms`: count, image shape, first
// index and recorded checksum must agree. Returns the SHA-256 its content must hash to; with
// `verify_checksums` there must be one.
std::string check_shard(const ShardInfo& info, const ManifestShard& ms, const Manifest& man,
                        bool verify_checksums) {
  const std::string& path = info.path;
  if (info.count != ms.count) {
    throw io::DataError(path, "holds " + std::to_string(info.count) + " images, the manifest " +
                                  man.path + " says " + std::to_string(ms.count));
  }
  if (info.shape.channels != man.shape.channels || info.shape.height != man.shape.height ||
      info.shape.width != man.shape.width) {
    throw io::BadDataError(
        path, "attribute 'image_shape' " +
                  io::dims_text({info.shape.channels, info.shape.height, info.shape.width}) +
                  " differs from the manifest's " +
                  io::dims_text({man.shape.channels, man.shape.height, man.shape.width}));
  }
  if (info.first_index != ms.first_index) {
    throw io::BadDataError(path, "attribute 'first_index' is " + std::to_string(info.first_index) +
                                     ", the manifest " + man.path + " says " +
                                     std::to_string(ms.first_index));
  }
  if (!ms.sha256.empty() && info.sha256 != ms.sha256) {
    throw io::ChecksumError(path, "checksum attribute " + info.sha256 +
                                      " differs from the manifest's " + ms.sha256 +
                                      " (shard replaced or rewritten?)");
  }
  const std::string expected = ms.sha256.empty() ? info.sha256 : ms.sha256;
  if (verify_checksums && !io::sha256_hex(expected)) {
    throw io::BadDataError(path, "attribute 'sha256' is '" + expected +
                                     "' and the manifest records none: nothing to verify the "
                                     "content against (data.verify_checksums: false trains "
                                     "without the check)");
  }
  return expected;
}

struct Item {
  std::optional<Batch> batch;
  std::exception_ptr error;  // set: the thread stopped on this error
  // Neither: the end of an epoch.
};

// A batch being filled: its tensors and the order positions [begin, end) it holds.
struct Pending {
  Batch batch;
  int64_t begin = 0, end = 0;
};

}  // namespace

struct ShardLoader::Impl {
  Manifest manifest;
  LoaderOptions opt;
  ImageShape shape;
  int64_t image_bytes = 0;
  std::vector<ShardFile> shards;
  std::vector<Block> blocks;    // the split's chunks in file order: EpochPlan's chunk ids
  std::vector<uint8_t> labels;  // the whole split's labels: one byte per image
  int64_t window_blocks = 1;
  std::optional<EpochPlan> plan;
  int64_t batches = 0;  // this rank's batches per epoch
  bool pinned = false;
  // Batch buffers (images; labels and indices) unless pinned: CUDA's host allocator caches.
  std::shared_ptr<BufferPool> images_pool, index_pool;
  // Content verification, on the worker thread only: chunks to hash in all, hashed so far, the
  // shard being hashed, a buffer for inflated or HDF5-read chunks, windows read since start.
  int64_t verify_blocks = 0;
  int64_t verified_blocks = 0;
  size_t verify_cursor = 0;
  std::vector<uint8_t> verify_buffer;
  int64_t windows_read = 0;

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

  ~Impl() { halt(); }

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

  void check_options() const {
    if (opt.world < 1 || opt.rank < 0 || opt.rank >= opt.world) {
      throw io::DataError(manifest.path, "rank " + std::to_string(opt.rank) + " of world " +
                                             std::to_string(opt.world) + " is not a valid rank");
    }
    if (opt.batch_size < 1) {
      throw io::DataError(manifest.path,
                          "batch size must be positive, got " + std::to_string(opt.batch_size));
    }
  }

  // Opens shard s of the manifest, checks it (check_shard), maps it and appends its labels and
  // chunks; returns its chunk size in images. Labels grow shard by shard, each only after its
  // file confirmed its count: the manifest's count alone must not size an allocation.
  int64_t add_shard(size_t s) {
    const ManifestShard& ms = manifest.shards[s];
    const std::string path = manifest.shard_path(ms);
    hdf5::probe_shard_header(path);  // libhdf5 itself may crash on a crafted header
    ShardReader reader(path);
    const std::string expected = check_shard(reader.info(), ms, manifest, opt.verify_checksums);
    const auto lab = reader.read_labels();
    const int64_t label_first = static_cast<int64_t>(labels.size());
    labels.insert(labels.end(), lab.begin(), lab.end());
    const auto locs = reader.chunk_locations();
    ShardFile f(std::move(reader));
    f.label_first = label_first;
    f.expected_sha256 = expected;
    f.first_block = static_cast<int64_t>(blocks.size());
    f.block_images = f.reader.block_images();
    if (locs) f.file = MappedFile(path);
    if (opt.verify_checksums) {
      f.identity = file_identity(path, expected);
      std::lock_guard<std::mutex> lock(verified_mutex());
      f.verified = !f.identity.empty() && verified_shards().count(f.identity) > 0;
      if (!f.verified) verify_blocks += (ms.count + f.block_images - 1) / f.block_images;
    } else {
      f.verified = true;
    }
    for (int64_t first = 0, c = 0; first < ms.count; first += f.block_images, ++c) {
      Block b;
      b.shard = static_cast<int>(s);
      b.first = first;
      b.count = std::min(f.block_images, ms.count - first);
      b.global_first = ms.first_index + first;
      if (f.file.data() != nullptr) {
        b.loc = (*locs)[static_cast<size_t>(c)];
        b.direct = true;
      }
      blocks.push_back(b);
    }
    const int64_t block_images = f.block_images;
    shards.push_back(std::move(f));
    return block_images;
  }

  // The epoch plan over the chunks added, and this rank's share of it.
  void make_plan(int64_t max_block) {
    window_blocks = EpochPlan::window_chunks(opt.shuffle_window, max_block);
    if (window_blocks * max_block > int64_t{UINT32_MAX}) {
      throw io::DataError(
          manifest.path,
          "a shuffle window of " + std::to_string(opt.shuffle_window) + " images is too large");
    }
    std::vector<ChunkSpan> chunks;
    chunks.reserve(blocks.size());
    for (const Block& b : blocks) chunks.push_back(ChunkSpan{b.global_first, b.count});
    plan.emplace(std::move(chunks), EpochPlanOptions{opt.seed, opt.shuffle, window_blocks,
                                                     opt.world, opt.batch_size, opt.drop_last});
    batches = plan->batches(opt.rank);
    if (plan->images(opt.rank) == 0) {
      throw io::DataError(manifest.path,
                          "split '" + manifest.split + "' has " + std::to_string(manifest.count) +
                              " images: too few for " + std::to_string(opt.world) +
                              " ranks with batches of " + std::to_string(opt.batch_size));
    }
  }

  // Batch buffers, unless pinned (CUDA's host allocator caches those).
  void make_pools() {
    // One batch of images must be a sane allocation (batch_size comes from a config, the image
    // size from the data): at most 16 GiB.
    if (!io::checked_mul(static_cast<uint64_t>(opt.batch_size), static_cast<uint64_t>(image_bytes),
                         uint64_t{16} << 30)) {
      throw io::BadDataError(manifest.path, "a batch of " + std::to_string(opt.batch_size) +
                                                " images of " + std::to_string(image_bytes) +
                                                " bytes exceeds 16 GiB; use a smaller batch");
    }
    pinned = opt.pin_memory && torch::cuda::is_available();
    if (pinned) return;
    images_pool =
        std::make_shared<BufferPool>(static_cast<size_t>(opt.batch_size * image_bytes), true);
    index_pool =
        std::make_shared<BufferPool>(static_cast<size_t>(opt.batch_size) * sizeof(int64_t), false);
  }

  // Blocks until fewer than `prefetch` batches are queued; false once halted. While the queue
  // is full the thread would idle: it hashes shards then (verify_some), so verification costs
  // the training step nothing when the loader keeps ahead.
  bool wait_for_room() {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      if (stop) return false;
      if (static_cast<int64_t>(queue.size()) < std::max<int64_t>(1, opt.prefetch)) return true;
      if (verified_blocks < verify_blocks) {
        lock.unlock();
        verify_some(1);
        lock.lock();
        continue;
      }
      not_full.wait(lock);
    }
  }

  // Hashes up to `max_blocks` chunks of the shards not verified yet, shard by shard in file
  // order; a shard whose last chunk is hashed is compared with its recorded SHA-256 (images
  // bytes in C order, then its labels). Throws io::ChecksumError naming the shard on a mismatch.
  void verify_some(int64_t max_blocks) {
    for (int64_t done = 0; done < max_blocks && verified_blocks < verify_blocks;) {
      while (shards[verify_cursor].verified) ++verify_cursor;
      ShardFile& f = shards[verify_cursor];
      const int64_t nblocks = (f.reader.info().count + f.block_images - 1) / f.block_images;
      if (!f.digest) f.digest = std::make_unique<io::Digest>();
      if (f.hashed_blocks < nblocks) {
        const Block& b = blocks[static_cast<size_t>(f.first_block + f.hashed_blocks)];
        const size_t bytes = static_cast<size_t>(b.count * image_bytes);
        if (b.direct && !b.loc.deflated) {
          check_size(f, b);
          f.digest->update(f.file.data() + b.loc.offset, bytes);
        } else if (b.direct) {
          check_size(f, b);
          inflate_block(f, b, verify_buffer);
          f.digest->update(verify_buffer.data(), bytes);
        } else {
          verify_buffer.resize(bytes);
          f.reader.read_images(b.first, b.count, verify_buffer.data());
          f.digest->update(verify_buffer.data(), bytes);
        }
        ++f.hashed_blocks;
        ++verified_blocks;
        ++done;
      }
      if (f.hashed_blocks == nblocks) {
        f.digest->update(labels.data() + f.label_first, static_cast<size_t>(f.reader.info().count));
        const std::string got = f.digest->hex();
        f.digest.reset();
        if (got != f.expected_sha256) {
          throw io::ChecksumError(f.reader.info().path,
                                  "content hashes to " + got + ", but its manifest records " +
                                      f.expected_sha256 +
                                      " (corrupt or modified shard; data.verify_checksums: false "
                                      "skips this check)");
        }
        f.verified = true;
        std::lock_guard<std::mutex> lock(verified_mutex());
        verified_shards().insert(f.identity);
      }
    }
  }

  // After `windows` windows since the thread started, the share of the split they make of an
  // epoch must be verified: the idle time in wait_for_room() normally did it already, otherwise
  // the thread hashes the rest now, so every shard is verified within the first epoch.
  void verify_quota(int64_t windows) {
    if (verified_blocks >= verify_blocks) return;
    const int64_t nwindows = std::max<int64_t>(
        1, (static_cast<int64_t>(blocks.size()) + window_blocks - 1) / window_blocks);
    const int64_t target =
        windows >= nwindows ? verify_blocks : (verify_blocks * windows + nwindows - 1) / nwindows;
    if (target > verified_blocks) verify_some(target - verified_blocks);
  }

  // The size of shard f's file now, at most its mapping's: a shard cut short after it was
  // opened would make the mapping raise SIGBUS.
  static uint64_t mapped_size(const ShardFile& f) {
    struct stat st {};
    if (::fstat(f.file.fd(), &st) != 0) {
      throw io::DataError(f.reader.info().path,
                          std::string("cannot stat: ") + std::strerror(errno));
    }
    return std::min<uint64_t>(static_cast<uint64_t>(std::max<off_t>(st.st_size, 0)), f.file.size());
  }

  // The file, `size` bytes long, must hold chunk b before the mapping is read (else SIGBUS).
  static void require_chunk(const ShardFile& f, const Block& b, uint64_t size) {
    // io::range_fits: `offset + stored_bytes` would wrap around for a huge offset.
    if (!io::range_fits(b.loc.offset, b.loc.stored_bytes, size)) {
      throw io::BadDataError(f.reader.info().path, "cannot read chunk at image " +
                                                       std::to_string(b.first) +
                                                       ": file ends early (truncated?)");
    }
  }

  static void check_size(const ShardFile& f, const Block& b) {
    require_chunk(f, b, mapped_size(f));
  }

  // Inflates deflated chunk `b` from the mapping into `out` (the chunk's full size).
  void inflate_block(const ShardFile& f, const Block& b, std::vector<uint8_t>& out) const {
    const size_t full_bytes =
        static_cast<size_t>(f.block_images) * static_cast<size_t>(image_bytes);
    out.resize(full_bytes);
    uLongf len = static_cast<uLongf>(full_bytes);
    const int rc = ::uncompress(out.data(), &len, f.file.data() + b.loc.offset,
                                static_cast<uLong>(b.loc.stored_bytes));
    if (rc != Z_OK || len != full_bytes) {
      throw io::BadDataError(f.reader.info().path,
                             "chunk at image " + std::to_string(b.first) + " does not inflate to " +
                                 std::to_string(full_bytes) + " bytes (corrupt gzip data)");
    }
  }

  // Queues `items` (the batches a window completed) under one lock with one wake-up: a hand-over
  // per batch would cost a context switch per batch. False once halted.
  bool hand_out(std::vector<Item>& items) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stop) return false;
      for (Item& item : items) queue.push_back(std::move(item));
    }
    items.clear();
    not_empty.notify_one();
    return true;
  }

  // Checks the size of every shard window w reads (one fstat each) before touching it.
  void check_sizes(const EpochOrder& p, size_t w, std::vector<int64_t>& size_of) const {
    std::fill(size_of.begin(), size_of.end(), -1);
    const auto [c0, c1] = plan->window(p, w);
    for (size_t c = c0; c < c1; ++c) {
      const Block& b = blocks[static_cast<size_t>(p.perm[c])];
      if (!b.direct) continue;
      const ShardFile& f = shards[b.shard];
      int64_t& size = size_of[b.shard];
      if (size < 0) size = static_cast<int64_t>(mapped_size(f));
      require_chunk(f, b, static_cast<uint64_t>(size));
    }
  }

  // Page faults of this thread that read from the disk.
  static long major_faults() {
    rusage u{};
    ::getrusage(RUSAGE_THREAD, &u);
    return u.ru_majflt;
  }

  // Asks the kernel to start reading window w's chunks, so that a cold page cache fills while
  // the previous window is copied.
  void advise(const EpochOrder& p, size_t w) const {
    static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const auto [c0, c1] = plan->window(p, w);
    for (size_t c = c0; c < c1; ++c) {
      const Block& b = blocks[static_cast<size_t>(p.perm[c])];
      if (!b.direct) continue;
      const size_t from = b.loc.offset / page * page;
      ::madvise(const_cast<uint8_t*>(shards[b.shard].file.data()) + from,
                b.loc.offset + b.loc.stored_bytes - from, MADV_WILLNEED);
    }
  }

  // Copies the images of chunk `b` whose destination slot[i] (image i of the chunk) is set:
  // straight from the mapped file for raw chunks, through `chunk` for deflated ones (inflated
  // from the mapping) and for shards read through HDF5.
  void read_block(const Block& b, uint8_t* const* slot, std::vector<uint8_t>& chunk) const {
    const ShardFile& f = shards[b.shard];
    const std::string& path = f.reader.info().path;
    const size_t ib = static_cast<size_t>(image_bytes);
    const size_t full_bytes = static_cast<size_t>(f.block_images) * ib;
    int64_t lo = 0, hi = b.count;  // the wanted images lie in [lo, hi)
    while (lo < hi && slot[lo] == nullptr) ++lo;
    while (hi > lo && slot[hi - 1] == nullptr) --hi;
    if (lo == hi) return;
    const uint8_t* src = nullptr;
    if (b.direct && !b.loc.deflated) {
      if (b.loc.stored_bytes != full_bytes) {
        throw io::BadDataError(path, "chunk at image " + std::to_string(b.first) + " stores " +
                                         std::to_string(b.loc.stored_bytes) + " bytes, " +
                                         std::to_string(full_bytes) + " expected");
      }
      src = f.file.data() + b.loc.offset;
    } else if (b.direct) {
      inflate_block(f, b, chunk);
      src = chunk.data();
    } else {
      chunk.resize(std::max(full_bytes, static_cast<size_t>(b.count) * ib));
      f.reader.read_images(b.first + lo, hi - lo, chunk.data() + lo * ib);
      src = chunk.data();
    }
    const bool whole_lines = ib % 64 == 0;
    for (int64_t i = lo; i < hi;) {
      int64_t next = i + 1;
      while (next < hi && slot[next] == nullptr) ++next;
      // The first lines of the next wanted image: when a rank takes only some images of a
      // chunk, the hardware prefetcher does not see them coming (about 10% for a rank of 4).
      if (next < hi) {
        for (size_t k = 0; k < 8 && k * 64 < ib; ++k) __builtin_prefetch(src + next * ib + k * 64);
      }
      copy_image(slot[i], src + i * ib, ib, whole_lines);
      i = next;
    }
  }

  Pending make_batch(int64_t epoch, int64_t j) const {
    const auto [first, n] = plan->positions(opt.rank, j);
    Pending p;
    if (pinned) {
      p.batch.images =
          torch::empty({n, shape.channels, shape.height, shape.width},
                       torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true));
      p.batch.labels = torch::empty({n}, torch::kInt64);
      p.batch.indices = torch::empty({n}, torch::kInt64);
    } else {
      // at::from_blob on recycled buffers: a third of the cost of torch::empty.
      p.batch.images = at::from_blob(
          images_pool->get(), {n, shape.channels, shape.height, shape.width},
          [pool = images_pool](void* d) { pool->put(d); }, at::kByte);
      p.batch.labels = at::from_blob(
          index_pool->get(), {n}, [pool = index_pool](void* d) { pool->put(d); }, at::kLong);
      p.batch.indices = at::from_blob(
          index_pool->get(), {n}, [pool = index_pool](void* d) { pool->put(d); }, at::kLong);
    }
    p.batch.epoch = epoch;
    p.batch.index = j;
    p.begin = first;
    p.end = first + n;
    return p;
  }

  // The worker thread's buffers, reused from window to window, and whether it asks the kernel
  // to read windows ahead (see read_window).
  struct Scratch {
    std::vector<uint8_t*> slot;  // per image of the window's chunks: its batch slot, or null
    std::vector<uint8_t> chunk;
    std::vector<int64_t> size_of;                         // per shard, for check_sizes
    std::vector<std::pair<const Block*, int64_t>> reads;  // chunk, its first slot
    bool advising = false;
    int probe = 0;
  };

  // Points every position [ws, we) of the window that an open batch holds at its slot in that
  // batch, and fills in the position's label and split index.
  void place_window(const EpochOrder& p, int64_t ws, int64_t we, std::deque<Pending>& open,
                    std::vector<uint8_t*>& slot) const {
    slot.assign(static_cast<size_t>(we - ws), nullptr);
    for (Pending& pb : open) {
      const int64_t lo = std::max(pb.begin, ws), hi = std::min(pb.end, we);
      if (lo >= hi) continue;
      uint8_t* img = static_cast<uint8_t*>(pb.batch.images.data_ptr());
      int64_t* lab = pb.batch.labels.data_ptr<int64_t>();
      int64_t* idx = pb.batch.indices.data_ptr<int64_t>();
      for (int64_t at = lo; at < hi; ++at) {
        const int64_t g = p.order[static_cast<size_t>(at)];
        const int64_t i = at - pb.begin;
        lab[i] = labels[static_cast<size_t>(g)];
        idx[i] = g;
        slot[p.offset[static_cast<size_t>(at)]] = img + i * image_bytes;
      }
    }
  }

  // Copies the images of window w into their slots, the window's chunks in file order for a
  // disk's sake, then decides whether to advise the next windows ahead of time.
  void read_window(const EpochOrder& p, size_t w, Scratch& s) {
    check_sizes(p, w, s.size_of);
    s.reads.clear();
    const auto [c0, c1] = plan->window(p, w);
    int64_t base = 0;
    for (size_t c = c0; c < c1; ++c) {
      const Block& blk = blocks[static_cast<size_t>(p.perm[c])];
      s.reads.emplace_back(&blk, base);
      base += blk.count;
    }
    std::sort(s.reads.begin(), s.reads.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    const long faults = major_faults();
    for (const auto& [blk, first_slot] : s.reads) {
      read_block(*blk, s.slot.data() + first_slot, s.chunk);
    }
    store_fence();
    verify_quota(++windows_read);
    // Pages that had to come from the disk: the files are not (all) in the page cache, so ask
    // for each next window ahead of time (madvise costs several per cent of the loader's time
    // when they are). Now and then a window goes unadvised to see whether that is still so.
    if (major_faults() > faults) {
      s.advising = true;
      s.probe = 16;
    } else if (s.advising && --s.probe <= 0) {
      s.advising = false;
    }
  }

  // Window by window: allocate the batches that hold positions of the window, point every such
  // position's image at its slot in them, copy each wanted image of the window's chunks once,
  // and hand out the batches that are complete. False once halted.
  bool run_epoch(int64_t epoch, int64_t next_batch, const EpochOrder& p, Scratch& s) {
    std::deque<Pending> open;
    std::vector<Item> done;
    bool started = false;
    for (size_t w = 0; w + 1 < p.starts.size() && (next_batch < batches || !open.empty()); ++w) {
      const int64_t ws = p.starts[w], we = p.starts[w + 1];
      const bool starts_batch =
          next_batch < batches && plan->positions(opt.rank, next_batch).first < we;
      if (open.empty() && !starts_batch) continue;  // before the position restored to
      // Read ahead only while the queue runs short: at most `prefetch` batches plus those of
      // one window are ever waiting.
      if (!wait_for_room()) return false;
      while (next_batch < batches && plan->positions(opt.rank, next_batch).first < we) {
        open.push_back(make_batch(epoch, next_batch++));
      }
      if (s.advising) {
        if (!started) advise(p, w);
        if (w + 2 < p.starts.size()) advise(p, w + 1);
      }
      started = true;
      place_window(p, ws, we, open, s.slot);
      read_window(p, w, s);
      while (!open.empty() && open.front().end <= we) {
        done.push_back(Item{std::move(open.front().batch), nullptr});
        open.pop_front();
      }
      if (!done.empty() && open.empty() && next_batch == batches) break;
      if (!done.empty() && !hand_out(done)) return false;
    }
    done.push_back(Item{});  // the end of the epoch, with its last batches
    return hand_out(done);
  }

  // The worker thread: epoch after epoch from `from` until halted or an error, which it queues
  // for next() to rethrow.
  void run(LoaderPosition from) {
    try {
      Scratch s;
      s.size_of.resize(shards.size());
      EpochOrder p;
      for (int64_t epoch = from.epoch;; ++epoch) {
        plan->order(epoch, p);
        if (!run_epoch(epoch, epoch == from.epoch ? from.index : 0, p, s)) return;
      }
    } catch (const io::ChecksumError&) {
      // Corrupt data: the batches still queued came partly from it, so the error goes first and
      // the next next() stops the job.
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stop) return;
        queue.push_front(Item{std::nullopt, std::current_exception()});
      }
      not_empty.notify_one();
    } catch (...) {
      std::vector<Item> error;
      error.push_back(Item{std::nullopt, std::current_exception()});
      hand_out(error);
    }
  }
};

ShardLoader::ShardLoader(const std::string& manifest_or_dir, const std::string& split,
                         LoaderOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.opt = options;
  m.manifest = open_manifest(manifest_or_dir, split);
  m.check_options();
  m.shape = m.manifest.shape;
  // read_manifest checked the dimensions (each >= 1, an image at most io::kMaxImageBytes).
  m.image_bytes = m.shape.channels * m.shape.height * m.shape.width;
  // Every shard is opened, checked, mapped and cut into chunks before the worker thread
  // starts, so a bad shard is refused here.
  int64_t max_block = 1;
  for (size_t s = 0; s < m.manifest.shards.size(); ++s) {
    max_block = std::max(max_block, m.add_shard(s));
  }
  m.make_plan(max_block);
  m.make_pools();
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
    throw io::DataError(m.manifest.path, "cannot restore loader position (epoch " +
                                             std::to_string(p.epoch) + ", batch " +
                                             std::to_string(p.index) + "): an epoch has " +
                                             std::to_string(batches_per_epoch()) + " batches");
  }
  m.halt();
  m.failed = nullptr;
  m.pos = p;
  m.start(p);
}

LoaderPosition ShardLoader::map_position(const LoaderPosition& p, int64_t old_global_batch,
                                         int64_t new_global_batch) {
  if (old_global_batch < 1 || new_global_batch < 1 || p.epoch < 0 || p.index < 0) {
    throw std::invalid_argument("map_position: cannot map position (epoch " +
                                std::to_string(p.epoch) + ", batch " + std::to_string(p.index) +
                                ") from global batches of " + std::to_string(old_global_batch) +
                                " to " + std::to_string(new_global_batch) +
                                " (positions must not be negative, sizes must be positive)");
  }
  // The first image not yet consumed is at position p.index · old; its new batch, rounded down.
  return {p.epoch, p.index * old_global_batch / new_global_batch};
}

int64_t ShardLoader::batches_per_epoch() const { return impl_->batches; }
int64_t ShardLoader::images_per_epoch() const { return impl_->plan->images(impl_->opt.rank); }
int64_t ShardLoader::global_batch_size() const { return impl_->plan->global_batch(); }
int64_t ShardLoader::split_size() const { return impl_->plan->total(); }
ImageShape ShardLoader::image_shape() const { return impl_->shape; }
const Manifest& ShardLoader::manifest() const { return impl_->manifest; }
const LoaderOptions& ShardLoader::options() const { return impl_->opt; }
double ShardLoader::wait_seconds() const { return impl_->waited; }

}  // namespace agave::data
