#include "cluster/job_channel.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "cluster/activity.h"
#include "cluster/bounded_call.h"
#include "cluster/communicator.h"

namespace agave::cluster {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kProbeTag = 1;
constexpr int kReplyTag = 2;
constexpr int kStopTag = 3;
constexpr int kHostBytes = 64;
// How often the service thread looks for probes and stops: fast enough that a probe's answer
// comes within a fraction of the grace period, cheap enough to be invisible beside training.
constexpr auto kPoll = std::chrono::milliseconds(20);

std::atomic<JobChannel*> g_current{nullptr};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string fmt_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f", s);
  return buf;
}

}  // namespace

JobChannel::JobChannel(MPI_Comm world, std::atomic<bool>& stop, double timeout_seconds)
    : timeout_seconds_(timeout_seconds), stop_(stop) {
  // bound: cluster.timeout_seconds (run_within), every rank of the job duplicates at start-up.
  run_within("job channel start-up (MPI_Comm_dup)", timeout_seconds, [&] {
    if (MPI_Comm_dup(world, &comm_) != MPI_SUCCESS) throw std::runtime_error("MPI_Comm_dup failed");
  });
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  char host[kHostBytes] = {0};
  gethostname(host, kHostBytes - 1);
  std::vector<char> all(static_cast<size_t>(kHostBytes) * size_);
  // bound: cluster.timeout_seconds (run_within): no service thread answers probes yet.
  run_within("job channel start-up (host names all-gather)", timeout_seconds, [&] {
    MPI_Allgather(host, kHostBytes, MPI_CHAR, all.data(), kHostBytes, MPI_CHAR, comm_);
  });
  for (int r = 0; r < size_; ++r) hosts_.emplace_back(all.data() + r * kHostBytes);
  thread_ = std::thread([this] { serve(); });
  g_current.store(this);
}

JobChannel::~JobChannel() {
  g_current.store(nullptr);
  quit_ = true;
  thread_.join();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm_);
}

JobChannel* JobChannel::current() { return g_current.load(); }

std::string JobChannel::name_of(int r) const {
  const std::string host = r >= 0 && r < size_ ? hosts_[r] : "?";
  return "rank " + std::to_string(r) + " (" + host + ")";
}

void JobChannel::send_stop(int to) {
  int one = 1;
  // bound: one int, sent eagerly (Open MPI's TCP and shared-memory eager limits are kilobytes).
  MPI_Send(&one, 1, MPI_INT, to, kStopTag, comm_);
}

void JobChannel::serve() {
  while (!quit_.load()) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, kProbeTag, comm_, &flag, &st);
    if (flag) {
      int id = 0;
      // bound: the message is there (MPI_Iprobe found it): returns at once.
      MPI_Recv(&id, 1, MPI_INT, st.MPI_SOURCE, kProbeTag, comm_, MPI_STATUS_IGNORE);
      const Activity a = current_activity();
      const std::string reply =
          std::to_string(id) + "|" +
          (a.waiting_for.empty() ? "busy|" + a.describe() : "waiting|" + a.waiting_for);
      // bound: a few hundred bytes, sent eagerly, so this never blocks on the prober.
      MPI_Send(reply.data(), static_cast<int>(reply.size()), MPI_CHAR, st.MPI_SOURCE, kReplyTag,
               comm_);
      continue;
    }
    MPI_Iprobe(MPI_ANY_SOURCE, kStopTag, comm_, &flag, &st);
    if (flag) {
      int one = 0;
      // bound: the message is there (MPI_Iprobe found it): returns at once.
      MPI_Recv(&one, 1, MPI_INT, st.MPI_SOURCE, kStopTag, comm_, MPI_STATUS_IGNORE);
      if (!stop_.load()) stop_learned_ = true;
      stop_.store(true);
    }
    // Rank 0 tells everybody; any other rank that got the signal itself tells rank 0. One
    // message per rank and job, whatever the number of ranks that were signalled.
    if (stop_.load() && !stop_sent_) {
      stop_sent_ = true;
      if (rank_ == 0) {
        for (int r = 1; r < size_; ++r) send_stop(r);
      } else if (!stop_learned_) {
        send_stop(0);
      }
    }
    std::this_thread::sleep_for(kPoll);
  }
}

std::vector<std::string> JobChannel::probe(const std::vector<int>& ranks, double grace) {
  std::lock_guard<std::mutex> lock(probe_mu_);
  const int id = ++probe_id_;
  std::vector<std::string> answers(ranks.size());
  std::vector<MPI_Request> sends(ranks.size(), MPI_REQUEST_NULL);
  for (size_t i = 0; i < ranks.size(); ++i) {
    MPI_Isend(&id, 1, MPI_INT, ranks[i], kProbeTag, comm_, &sends[i]);
  }
  size_t pending = ranks.size();
  const auto start = Clock::now();
  while (pending > 0 && seconds_since(start) < grace) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, kReplyTag, comm_, &flag, &st);
    if (!flag) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    int n = 0;
    MPI_Get_count(&st, MPI_CHAR, &n);
    std::string reply(static_cast<size_t>(n), '\0');
    // bound: the message is there (MPI_Iprobe found it): returns at once.
    MPI_Recv(reply.data(), n, MPI_CHAR, st.MPI_SOURCE, kReplyTag, comm_, MPI_STATUS_IGNORE);
    const auto bar = reply.find('|');
    if (bar == std::string::npos || reply.substr(0, bar) != std::to_string(id)) continue;  // stale
    for (size_t i = 0; i < ranks.size(); ++i) {
      if (ranks[i] == st.MPI_SOURCE && answers[i].empty()) {
        answers[i] = reply.substr(bar + 1);
        --pending;
      }
    }
  }
  // A send to a stopped rank may never complete; its buffer (`id`) is not needed by then: the
  // caller ends the job, or the probe went out eagerly.
  for (auto& s : sends) {
    if (s != MPI_REQUEST_NULL) MPI_Request_free(&s);
  }
  return answers;
}

std::vector<int> JobChannel::agree_max(const std::vector<int>& mine, const std::string& what) {
  std::vector<int> in = mine, out(mine.size(), 0);
  MPI_Request req = MPI_REQUEST_NULL;
  MPI_Iallreduce(in.data(), out.data(), static_cast<int>(in.size()), MPI_INT, MPI_MAX, comm_, &req);
  std::vector<int> everybody(static_cast<size_t>(size_));
  for (int r = 0; r < size_; ++r) everybody[static_cast<size_t>(r)] = r;
  // bound: liveness (wait_while_alive): other groups may legitimately train for hours.
  wait_while_alive(
      [&] {
        int done = 0;
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        return done != 0;
      },
      everybody, what, timeout_seconds_);
  return out;
}

void wait_while_alive(const std::function<bool()>& done, const std::vector<int>& peers,
                      const std::string& what, double timeout_seconds) {
  WaitingScope waiting(what);
  JobChannel* channel = JobChannel::current();
  const double period = std::clamp(timeout_seconds, 0.0, 1e7);
  const auto start = Clock::now();
  auto check_at = start + std::chrono::duration<double>(period);
  auto pause = std::chrono::milliseconds(1);
  while (!done()) {
    if (Clock::now() < check_at) {
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(10));
      continue;
    }
    if (channel == nullptr) {
      collective_timed_out(what + " did not complete within " + fmt_seconds(period) +
                           " s: a rank died or stopped responding; aborting the job");
    }
    std::vector<int> others;
    for (int r : peers)
      if (r != channel->rank()) others.push_back(r);
    const auto answers = channel->probe(others, std::clamp(timeout_seconds, 0.5, 2.0));
    std::string missing;
    for (size_t i = 0; i < others.size(); ++i) {
      if (answers[i].empty())
        missing += (missing.empty() ? "" : ", ") + channel->name_of(others[i]);
    }
    if (!missing.empty()) {
      collective_timed_out(channel->name_of(channel->rank()) + ": " + what + " waited " +
                           fmt_seconds(seconds_since(start)) + " s; " + missing +
                           " did not answer (stopped or hung); aborting the job");
    }
    check_at = Clock::now() + std::chrono::duration<double>(period);
  }
}

std::string stall_report(const std::string& collective, double waited, int group_rank,
                         int group_size, const std::vector<int>& peers) {
  JobChannel* channel = JobChannel::current();
  std::string me = "rank " + std::to_string(group_rank) + " of " + std::to_string(group_size);
  if (channel) me = channel->name_of(channel->rank()) + ", " + me + " of its run";
  std::string line = me + ": collective timeout: " + collective + " did not complete within " +
                     fmt_seconds(waited) + " s";
  if (!channel) return line + ": a rank of this run died or stopped responding";
  std::vector<int> others;
  for (int p : peers)
    if (p != channel->rank()) others.push_back(p);
  const auto answers = channel->probe(others, std::clamp(waited, 0.5, 2.0));
  std::string absent, elsewhere;
  int arrived = 0;
  for (size_t i = 0; i < others.size(); ++i) {
    const std::string& a = answers[i];
    if (a.empty()) {
      absent += (absent.empty() ? "" : ", ") + channel->name_of(others[i]);
    } else if (a == "waiting|" + collective) {
      ++arrived;
    } else {
      const auto bar = a.find('|');
      elsewhere += "; " + channel->name_of(others[i]) + " is at " +
                   (a.compare(0, bar, "waiting") == 0 ? "another collective: " : "") +
                   a.substr(bar + 1);
    }
  }
  if (!absent.empty()) line += "; did not arrive: " + absent + " (no answer: stopped or hung)";
  line += elsewhere;
  line += "; " + std::to_string(arrived) + " other rank(s) waiting in it too; aborting the job";
  return line;
}

}  // namespace agave::cluster
