#include "monitoring/step_record.h"

#include <fmt/format.h>

#include <type_traits>

#include "monitoring/progress_bar.h"

namespace agave::monitoring {

nlohmann::json to_json(const StepRecord& r) {
  nlohmann::json j;
  visit_fields(r, [&](const char* name, const auto& value, const LineStyle&) { j[name] = value; });
  return j;
}

namespace {

std::string show(double v, const LineStyle& s) {
  if (s.approximate) {
    LineStyle exact = s;
    exact.approximate = false;
    return "~" + show(v, exact);
  }
  switch (s.show) {
    case Show::kGeneral:
      return fmt::format("{:g}", v * s.scale);
    case Show::kDuration:
      return ProgressBar::format_duration(v * s.scale);
    case Show::kFixed:
      break;
  }
  return fmt::format("{:.{}f}", v * s.scale, s.digits);
}

}  // namespace

std::string step_line(const StepRecord& r) {
  std::string line = fmt::format("step {}/{} {}", r.step, r.total_steps, r.phase);
  visit_fields(r, [&](const char*, const auto& value, const LineStyle& s) {
    if constexpr (std::is_arithmetic_v<std::decay_t<decltype(value)>>) {
      if (*s.label == '\0') return;
      const std::string v = show(static_cast<double>(value), s);
      line += s.value_first ? fmt::format("  {} {}{}", v, s.label, s.unit)
                            : fmt::format("  {} {}{}", s.label, v, s.unit);
    }
  });
  return line;
}

}  // namespace agave::monitoring
