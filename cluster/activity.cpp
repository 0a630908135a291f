#include "cluster/activity.h"

#include <mutex>

namespace agave::cluster {
namespace {

// Written by the training thread (and autograd hooks), read by the stall responder thread.
std::mutex& activity_mutex() {
  static std::mutex mu;
  return mu;
}

Activity& activity() {
  static Activity a;
  return a;
}

}  // namespace

std::string Activity::describe() const {
  std::string out = what.empty() ? "no collective" : what;
  if (step >= 0) out += " at step " + std::to_string(step);
  if (!run.empty()) out += " of run " + run;
  return out;
}

Activity current_activity() {
  std::lock_guard<std::mutex> lock(activity_mutex());
  return activity();
}

void set_activity_run(const std::string& run) {
  std::lock_guard<std::mutex> lock(activity_mutex());
  activity().run = run;
  activity().step = -1;
}

ActivityScope::ActivityScope(std::string what, int64_t step) {
  std::lock_guard<std::mutex> lock(activity_mutex());
  auto& a = activity();
  previous_what_ = std::move(a.what);
  previous_step_ = a.step;
  a.what = std::move(what);
  if (step >= 0) a.step = step;
}

ActivityScope::~ActivityScope() {
  std::lock_guard<std::mutex> lock(activity_mutex());
  activity().what = std::move(previous_what_);
  activity().step = previous_step_;
}

WaitingScope::WaitingScope(const std::string& collective) {
  std::lock_guard<std::mutex> lock(activity_mutex());
  activity().waiting_for = collective;
}

WaitingScope::~WaitingScope() {
  std::lock_guard<std::mutex> lock(activity_mutex());
  activity().waiting_for.clear();
}

}  // namespace agave::cluster
