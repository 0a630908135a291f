#include "monitoring/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "monitoring/progress_output.h"

namespace agave::monitoring {

namespace {
// kAuto: the rule of monitoring/progress_output.h for `out` alone (a terminal, CI unset).
bool want_bar(std::FILE* out, ProgressBar::Mode mode) {
  if (mode != ProgressBar::Mode::kAuto) return mode == ProgressBar::Mode::kBar;
  const char* ci = std::getenv("CI");
  TerminalFacts facts;
  facts.stderr_is_tty = ::isatty(::fileno(out)) == 1;
  facts.ci = ci != nullptr && *ci != '\0';
  return decide_progress(ProgressMode::kAuto, facts, true) == ProgressShow::kBarOnStderr;
}

std::string rate_text(double rate, const std::string& unit) {
  char buf[64];
  if (unit.empty()) {
    std::snprintf(buf, sizeof buf, "%.0f/s", rate);
  } else {
    std::snprintf(buf, sizeof buf, rate < 100 ? "%.1f %s/s" : "%.0f %s/s", rate, unit.c_str());
  }
  return buf;
}
}  // namespace

ProgressBar::ProgressBar(std::string label, int64_t total, std::FILE* out, Mode mode)
    : label_(std::move(label)), total_(total), out_(out), bar_(want_bar(out, mode)) {
  start_ = last_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() { finish(); }

std::string ProgressBar::format_duration(double s) {
  char buf[48];
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1f s", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%d min %02d s", static_cast<int>(s) / 60,
                  static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%d h %02d min", static_cast<int>(s) / 3600,
                  static_cast<int>(s) % 3600 / 60);
  }
  return buf;
}

void ProgressBar::set_eta(double seconds, bool approximate) {
  eta_ = seconds;
  eta_approximate_ = approximate;
  eta_at_ = std::chrono::steady_clock::now();
}

std::string ProgressBar::render(bool final) const {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  char buf[256];
  std::string s = label_ + " ";
  if (total_ > 0) {
    const double frac =
        std::clamp(static_cast<double>(done_) / static_cast<double>(total_), 0.0, 1.0);
    if (bar_) {
      constexpr int kWidth = 30;
      const int fill = static_cast<int>(frac * kWidth);
      s += "[" + std::string(fill, '#') + std::string(kWidth - fill, '.') + "] ";
    }
    std::snprintf(buf, sizeof buf, "%lld/%lld (%3.0f%%) ", static_cast<long long>(done_),
                  static_cast<long long>(total_), 100.0 * frac);
    s += buf + rate_text(rate, unit_);
    if (final) {
      s += ", took " + format_duration(elapsed);
    } else if (eta_ >= 0) {
      const double left = eta_ - std::chrono::duration<double>(now - eta_at_).count();
      s += std::string(", ETA ") + (eta_approximate_ ? "~" : "") +
           format_duration(std::max(0.0, left));
    } else if (rate > 0) {
      s += ", ETA " + format_duration(static_cast<double>(total_ - done_) / rate);
    }
  } else {
    std::snprintf(buf, sizeof buf, "%lld ", static_cast<long long>(done_));
    s += buf + rate_text(rate, unit_);
    if (final) s += ", took " + format_duration(elapsed);
  }
  return s;
}

void ProgressBar::emit(bool final) {
  const std::string line = render(final);
  if (bar_) {
    // \033[K clears what a longer previous line left behind.
    std::fprintf(out_, "\r%s\033[K%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
  drawn_ = true;
}

void ProgressBar::update(int64_t done) {
  if (finished_) return;
  done_ = done;
  const auto now = std::chrono::steady_clock::now();
  const auto interval = bar_ ? std::chrono::milliseconds(100) : line_interval_;
  if (now - last_ < interval) return;
  last_ = now;
  emit(false);
}

std::string ProgressBar::clear_prefix() {
  if (!bar_ || finished_) return "";
  last_ = {};  // the next update draws at once, not up to 100 ms later
  return "\r\033[K";
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  emit(true);
}

void ProgressBar::restart(std::string label, int64_t total) {
  finish();
  label_ = std::move(label);
  total_ = total;
  done_ = 0;
  eta_ = -1;
  finished_ = false;
  drawn_ = false;
  start_ = last_ = std::chrono::steady_clock::now();
}

}  // namespace agave::monitoring
