#pragma once
// The epoch plan: which image of a split every rank reads at every step, for any rank count. The
// property resuming rests on (a checkpoint taken at one world size continues at another, see
// ShardLoader::map_position) lives here and nowhere else.
//
// Epoch order: ONE permutation of the split per epoch, defined by (seed, epoch, shuffle, window)
// alone and the same on every rank and at every world size: the split's storage chunks are
// permuted, grouped into windows of `window_chunks` chunks, and the images of each window are
// permuted. Global batch j is order positions [j·G, (j+1)·G), G = world × batch_size; rank r's
// batch j is the r-th piece of it, [j·G + r·b, j·G + (r+1)·b). So n ranks with batches of b see
// exactly the global batches of one rank with batches of n·b, and every image is read by one
// rank at most once per epoch.
//
// The final partial global batch (the split's size not a multiple of G): with drop_last it is
// dropped on every rank; without, it is cut into `world` contiguous pieces, the first
// (rest mod world) of them an image longer, and a rank whose piece is empty has one batch fewer.
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace agave::data {

// A storage chunk: images [first, first + count) of the split, read together.
struct ChunkSpan {
  int64_t first = 0;
  int64_t count = 0;
};

struct EpochPlanOptions {
  uint64_t seed = 0;
  bool shuffle = true;
  int64_t window_chunks = 1;  // chunks shuffled together (EpochPlan::window_chunks)
  int64_t world = 1;
  int64_t batch_size = 1;  // per rank
  bool drop_last = true;
};

// One epoch's order of the whole split, the same on every rank. Window w holds the chunks
// perm[w·k, (w+1)·k) (k = window_chunks) and the order positions [starts[w], starts[w+1]);
// offset[p] is the image at position p counted within its window's chunks laid end to end, so
// a reader can place each image without searching. Reused across epochs: no allocation after
// the first.
struct EpochOrder {
  std::vector<int64_t> perm;    // chunk ids
  std::vector<int64_t> starts;  // each window's first position, then the split's size
  std::vector<int64_t> order;   // image index in the split, per position
  std::vector<uint32_t> offset;
  std::vector<int64_t> scratch;  // a window's images before the shuffle
};

class EpochPlan {
 public:
  // `chunks`: the split's chunks in file order, together covering [0, total) once; their index
  // is the chunk id of EpochOrder::perm. Throws std::invalid_argument for a world, batch size
  // or window below 1.
  EpochPlan(std::vector<ChunkSpan> chunks, EpochPlanOptions options);

  // Chunks per window for a shuffle window of about `shuffle_window` images and chunks of at
  // most `max_chunk` images: at least one.
  static int64_t window_chunks(int64_t shuffle_window, int64_t max_chunk);

  // Fills `out` with `epoch`'s order.
  void order(int64_t epoch, EpochOrder& out) const;
  // Window w's chunks: [first, last) of out.perm.
  std::pair<size_t, size_t> window(const EpochOrder& out, size_t w) const;

  // Rank `rank`'s batch j: order positions [first, first + count).
  std::pair<int64_t, int64_t> positions(int64_t rank, int64_t j) const;
  // The images rank `rank` reads at step j of `epoch`, in batch order (what a loader of that
  // rank yields; for tests and tools, it plans the whole epoch).
  std::vector<int64_t> examples(int64_t epoch, int64_t rank, int64_t j) const;

  int64_t batches(int64_t rank) const;  // rank's batches per epoch; equal on all with drop_last
  int64_t images(int64_t rank) const;   // rank's images per epoch
  int64_t global_batch() const { return global_batch_; }
  int64_t total() const { return total_; }
  const std::vector<ChunkSpan>& chunks() const { return chunks_; }

 private:
  std::vector<ChunkSpan> chunks_;
  EpochPlanOptions opt_;
  int64_t total_ = 0;
  int64_t global_batch_ = 0;  // world × batch_size
  int64_t full_ = 0;          // full global batches per epoch
};

}  // namespace agave::data
