// GoogleTest under mpirun: every rank runs every test; only rank 0 prints the report, and a
// failure on any rank fails the job (non-zero exit of that rank).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "cluster/mpi_runtime.h"

agave::cluster::MpiRuntime* g_mpi = nullptr;

namespace {
// On ranks other than 0: only failed assertions, tagged with the rank.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed()) {
      fprintf(stderr, "rank %d: %s:%d: %s\n", rank_, r.file_name() ? r.file_name() : "?",
              r.line_number(), r.summary());
    }
  }

 private:
  int rank_;
};
}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  agave::cluster::MpiRuntime mpi(&argc, &argv);
  g_mpi = &mpi;
  torch::set_num_threads(1);
  if (mpi.placement().world_rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(mpi.placement().world_rank));
  }
  const int rc = RUN_ALL_TESTS();
  // Report every rank's failures, then exit with the worst result.
  int worst = 0;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rc != 0) fprintf(stderr, "rank %d: tests failed\n", mpi.placement().world_rank);
  return worst;
}
