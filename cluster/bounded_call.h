#pragma once
// Blocking calls that wait on other processes and have no deadline of their own (MPI's start-up
// and teardown collectives, communicator splits and duplicates, NCCL's rendezvous): each runs on
// a thread of its own while the caller waits at most `timeout_seconds`. A missed deadline ends
// the job through collective_timed_out with one line naming the call, and the thread is left
// behind (it may stay blocked in MPI until the job ends).
#include <functional>
#include <string>
#include <vector>

namespace agave::cluster {

// Runs `call` and returns when it returns (rethrowing what it throws). Past the deadline: the
// line names `what` and, when `peers` (world ranks) are given and a JobChannel exists, which of
// them did not arrive.
void run_within(const std::string& what, double timeout_seconds, const std::function<void()>& call,
                const std::vector<int>& peers = {});

}  // namespace agave::cluster
