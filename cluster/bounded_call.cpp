#include "cluster/bounded_call.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "cluster/activity.h"
#include "cluster/communicator.h"
#include "cluster/job_channel.h"

namespace agave::cluster {
namespace {
// The same cap as the communicators' waits: a huge configured timeout must not overflow the
// clock arithmetic.
constexpr double kMaxWaitSeconds = 1e7;
}  // namespace

void run_within(const std::string& what, double timeout_seconds, const std::function<void()>& call,
                const std::vector<int>& peers) {
  // Shared with the thread: after a missed deadline the caller leaves and the thread may still
  // finish (or never), so it must own everything it touches.
  auto task = std::make_shared<std::packaged_task<void()>>(call);
  auto done = task->get_future();
  std::thread([task] { (*task)(); }).detach();
  const double timeout = std::clamp(timeout_seconds, 0.0, kMaxWaitSeconds);
  {
    WaitingScope waiting(what);
    if (done.wait_for(std::chrono::duration<double>(timeout)) != std::future_status::ready) {
      if (!peers.empty() && JobChannel::current() != nullptr) {
        const auto me = std::find(peers.begin(), peers.end(), JobChannel::current()->rank());
        collective_timed_out(stall_report(what, timeout, static_cast<int>(me - peers.begin()),
                                          static_cast<int>(peers.size()), peers));
      }
      collective_timed_out(what + " did not complete within " +
                           std::to_string(static_cast<long long>(timeout)) +
                           " s (cluster.timeout_seconds): a rank of the job did not start, died "
                           "or stopped responding; aborting the job");
    }
  }
  done.get();
}

}  // namespace agave::cluster
