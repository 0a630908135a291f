#pragma once
// How many ranks a generation runs: the most the live hosts hold, within --ranks MIN:MAX, that
// divide the global batch (every rank takes an equal share, so results do not depend on the
// count).
#include <cstdint>
#include <optional>
#include <string>

namespace agave::elastic {

struct RankRange {
  int min = 1;
  int max = 1;
};

// "MIN:MAX" or "N" (MIN = MAX = N), 1 <= MIN <= MAX; throws std::invalid_argument otherwise.
RankRange parse_rank_range(const std::string& text);

// The largest n in [range.min, min(range.max, slots)] that divides `global_batch` (any n when
// it is 0: not known); nullopt when there is none.
std::optional<int> choose_ranks(const RankRange& range, int slots, int64_t global_batch);

}  // namespace agave::elastic
