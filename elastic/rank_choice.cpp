#include "elastic/rank_choice.h"

#include <algorithm>
#include <stdexcept>

namespace agave::elastic {
namespace {

int parse_count(const std::string& text, const std::string& whole) {
  size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || n < 1) {
    throw std::invalid_argument("--ranks " + whole + ": expected MIN:MAX or N, 1 <= MIN <= MAX");
  }
  return n;
}

}  // namespace

RankRange parse_rank_range(const std::string& text) {
  const auto colon = text.find(':');
  RankRange r;
  r.min = parse_count(text.substr(0, colon), text);
  r.max = colon == std::string::npos ? r.min : parse_count(text.substr(colon + 1), text);
  if (r.min > r.max) {
    throw std::invalid_argument("--ranks " + text + ": MIN is larger than MAX");
  }
  return r;
}

std::optional<int> choose_ranks(const RankRange& range, int slots, int64_t global_batch) {
  for (int n = std::min(range.max, slots); n >= range.min; --n) {
    if (global_batch == 0 || global_batch % n == 0) return n;
  }
  return std::nullopt;
}

}  // namespace agave::elastic
