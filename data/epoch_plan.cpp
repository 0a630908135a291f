#include "data/epoch_plan.h"

#include <algorithm>
#include <stdexcept>
#include <string>

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

}  // namespace

EpochPlan::EpochPlan(std::vector<ChunkSpan> chunks, EpochPlanOptions options)
    : chunks_(std::move(chunks)), opt_(options) {
  if (opt_.world < 1 || opt_.batch_size < 1 || opt_.window_chunks < 1) {
    throw std::invalid_argument("EpochPlan: world " + std::to_string(opt_.world) + ", batch size " +
                                std::to_string(opt_.batch_size) + " and window of " +
                                std::to_string(opt_.window_chunks) +
                                " chunks must each be at least 1");
  }
  for (const ChunkSpan& c : chunks_) total_ += c.count;
  global_batch_ = opt_.world * opt_.batch_size;
  full_ = total_ / global_batch_;
}

int64_t EpochPlan::window_chunks(int64_t shuffle_window, int64_t max_chunk) {
  return std::max<int64_t>(1, (shuffle_window + max_chunk - 1) / max_chunk);
}

void EpochPlan::order(int64_t epoch, EpochOrder& p) const {
  const size_t nchunks = chunks_.size();
  p.perm.resize(nchunks);
  for (size_t i = 0; i < nchunks; ++i) p.perm[i] = static_cast<int64_t>(i);
  const uint64_t epoch_seed = mix(opt_.seed, static_cast<uint64_t>(epoch));
  if (opt_.shuffle) shuffle(p.perm, 0, nchunks, epoch_seed);
  // These window seeds are the ones rank 0 of 1 used when ranks took slices of the order, so
  // a 1-rank run keeps the order it had then.
  const uint64_t window_seed = mix(epoch_seed, 1);
  p.starts.clear();
  p.order.resize(static_cast<size_t>(total_));
  p.offset.resize(static_cast<size_t>(total_));
  size_t begin = 0;
  for (size_t w = 0; w * static_cast<size_t>(opt_.window_chunks) < nchunks; ++w) {
    p.starts.push_back(static_cast<int64_t>(begin));
    // The window's images, its chunks laid end to end, go to order[begin, end) for now.
    size_t end = begin;
    const auto [c0, c1] = window(p, w);
    for (size_t i = c0; i < c1; ++i) {
      const ChunkSpan& c = chunks_[static_cast<size_t>(p.perm[i])];
      for (int64_t j = 0; j < c.count; ++j) p.order[end++] = c.first + j;
    }
    for (size_t i = begin; i < end; ++i) p.offset[i] = static_cast<uint32_t>(i - begin);
    if (opt_.shuffle) {
      shuffle(p.offset, begin, end, mix(window_seed, w));
      p.scratch.assign(p.order.begin() + static_cast<std::ptrdiff_t>(begin),
                       p.order.begin() + static_cast<std::ptrdiff_t>(end));
      for (size_t i = begin; i < end; ++i) p.order[i] = p.scratch[p.offset[i]];
    }
    begin = end;
  }
  p.starts.push_back(total_);
}

std::pair<size_t, size_t> EpochPlan::window(const EpochOrder& p, size_t w) const {
  const size_t k = static_cast<size_t>(opt_.window_chunks);
  return {w * k, std::min(p.perm.size(), (w + 1) * k)};
}

std::pair<int64_t, int64_t> EpochPlan::positions(int64_t rank, int64_t j) const {
  const int64_t b = opt_.batch_size, n = opt_.world;
  if (j < full_) return {j * global_batch_ + rank * b, b};
  const int64_t rest = total_ - full_ * global_batch_, q = rest / n, m = rest % n;
  return {full_ * global_batch_ + rank * q + std::min(rank, m), q + (rank < m ? 1 : 0)};
}

std::vector<int64_t> EpochPlan::examples(int64_t epoch, int64_t rank, int64_t j) const {
  EpochOrder p;
  order(epoch, p);
  const auto [first, count] = positions(rank, j);
  return {p.order.begin() + first, p.order.begin() + first + count};
}

int64_t EpochPlan::batches(int64_t rank) const {
  if (opt_.drop_last) return full_;
  return full_ + (positions(rank, full_).second > 0 ? 1 : 0);
}

int64_t EpochPlan::images(int64_t rank) const {
  return full_ * opt_.batch_size + (opt_.drop_last ? 0 : positions(rank, full_).second);
}

}  // namespace agave::data
