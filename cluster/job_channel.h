#pragma once
// The job's side channel: a duplicate of MPI_COMM_WORLD and one service thread per process that
//  - answers "what are you doing?" probes: a rank whose collective timed out asks its peers and
//    names the ones that never answered (stopped, hung) or wait elsewhere, the way Horovod's
//    stall inspector has ranks report what they wait for;
//  - relays a stop request (SIGTERM, SIGUSR1) from any rank to every rank of the job through
//    world rank 0, so every sweep group checkpoints, not only the one that got the signal;
//  - carries the job-wide agreements (data ready, exit code) that wait for other groups as long
//    as they are alive, and end the job naming the ranks that are not.
// Needs MPI_THREAD_MULTIPLE: the service thread calls MPI beside the training thread and the
// communicators' workers.
#include <mpi.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace agave::cluster {

class JobChannel {
 public:
  // Collective over `world`. `stop` is the process's stop flag: set locally by signal handlers,
  // set here when another rank's stop arrives.
  JobChannel(MPI_Comm world, std::atomic<bool>& stop, double timeout_seconds);
  ~JobChannel();
  JobChannel(const JobChannel&) = delete;
  JobChannel& operator=(const JobChannel&) = delete;

  // The process's channel while one exists (timeout reports use it), else null.
  static JobChannel* current();

  int rank() const { return rank_; }
  int size() const { return size_; }
  // "rank 3 (node-7)".
  std::string name_of(int world_rank) const;

  // Asks `world_ranks` what they are doing; answer i is "" when rank i did not answer within
  // `grace_seconds`, "waiting|<collective>" when it blocks on a collective, "busy|<activity>".
  std::vector<std::string> probe(const std::vector<int>& world_ranks, double grace_seconds);

  // Element-wise maximum over every rank of the job. Waits as long as the ranks that have not
  // arrived answer probes (other groups may still train); a rank that stops answering ends the
  // job through the collective timeout handler, named.
  std::vector<int> agree_max(const std::vector<int>& mine, const std::string& what);

 private:
  void serve();
  void send_stop(int to);

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  double timeout_seconds_;
  std::vector<std::string> hosts_;
  std::atomic<bool>& stop_;
  std::atomic<bool> quit_{false};
  bool stop_sent_ = false;     // service thread only
  bool stop_learned_ = false;  // the stop came from another rank: nothing to announce
  std::mutex probe_mu_;
  int probe_id_ = 0;
  std::thread thread_;
};

// Polls `done` until it returns true. Every `timeout_seconds` it asks the `peers` (world ranks,
// this process left out) whether they are alive; one that does not answer within 2 s ends the
// job through the collective timeout handler, named. Ranks that answer (busy with work only
// they do: rank 0's pictures, its data conversion, the sweep table) are waited for. Without a
// JobChannel nobody can be asked: the wait ends the job after `timeout_seconds`.
void wait_while_alive(const std::function<bool()>& done, const std::vector<int>& peers,
                      const std::string& what, double timeout_seconds);

// The line a rank prints when `collective` (what the ranks of `peers`, world ranks, all issue)
// missed its deadline: the collective, this rank, and each peer that did not arrive with what
// it answered (nothing: stopped or hung; or where it is instead). Without a JobChannel, only
// what this rank knows.
std::string stall_report(const std::string& collective, double waited_seconds, int group_rank,
                         int group_size, const std::vector<int>& peers);

}  // namespace agave::cluster
