#pragma once
// What this process is doing, as collective timeout reports and stall probes name it: the run,
// the step and the part of it ("bucket 2/5 all-reduce", "decision", "eval", "end barrier").
// One per process: a rank trains one run at a time, and the probes ask the process.
#include <cstdint>
#include <string>

namespace agave::cluster {

struct Activity {
  std::string run;   // empty outside a run
  std::string what;  // empty when idle
  int64_t step = -1;
  std::string waiting_for;  // the collective this process blocks on, empty when none

  // "bucket 2/5 all-reduce at step 7 of run r" (the parts that are known).
  std::string describe() const;
};

Activity current_activity();
void set_activity_run(const std::string& run);

// Names the collectives issued while it lives; restores the previous name after. step < 0 keeps
// the step of the enclosing scope.
class ActivityScope {
 public:
  explicit ActivityScope(std::string what, int64_t step = -1);
  ~ActivityScope();
  ActivityScope(const ActivityScope&) = delete;
  ActivityScope& operator=(const ActivityScope&) = delete;

 private:
  std::string previous_what_;
  int64_t previous_step_;
};

// Marks the process as blocked on `collective` while it lives (what probes report).
class WaitingScope {
 public:
  explicit WaitingScope(const std::string& collective);
  ~WaitingScope();
  WaitingScope(const WaitingScope&) = delete;
  WaitingScope& operator=(const WaitingScope&) = delete;
};

}  // namespace agave::cluster
