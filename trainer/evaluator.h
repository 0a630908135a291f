#pragma once
// Test-set evaluation split across the ranks of a run: the single-sample ELBO and the
// importance-weighted bound on ln p(x), both in bits/dim of x, with standard errors.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "cluster/communicator.h"
#include "model/agave.h"
#include "trainer/options.h"

namespace agave::trainer {

struct EvalResult {
  int64_t images = 0;   // images evaluated, all ranks
  double elbo_bpd = 0;  // −ELBO (pixel + KL) in bits/dim
  double elbo_bpd_stderr = 0;
  double kl_bpd = 0;
  double iw_bpd = 0;  // −IW bound with K samples, bits/dim
  double iw_bpd_stderr = 0;
  int64_t importance_samples = 0;
};

// The result's numbers under their names, for every JSON that reports an evaluation (the
// JSONL eval event, summary.json with `prefix` "test_", agave_eval --json).
nlohmann::json to_json(const EvalResult& r, const std::string& prefix = "");

// "test ELBO 3.412 ± 0.010 bits/dim, IW(K=150) 3.401 ± 0.010, KL 0.012 (1000 images)".
std::string describe(const EvalResult& r);

// Evaluates `model` (in eval mode, no autograd) on this rank's disjoint share of the first
// `subset` images (0 = all) of the test split in `shards`; the sums are all-reduced.
EvalResult evaluate(model::Agave& model, const std::string& shards, const EvalOptions& options,
                    cluster::Communicator& comm, uint64_t seed,
                    const torch::Device& device = torch::kCPU);

// Called on every rank after each batch with this rank's images done and its share in all.
using EvalProgress = std::function<void(int64_t done, int64_t share)>;

// The same, reporting progress (e.g. to a progress bar on rank 0); `progress` may be empty.
EvalResult evaluate(model::Agave& model, const std::string& shards, const EvalOptions& options,
                    cluster::Communicator& comm, uint64_t seed, const torch::Device& device,
                    const EvalProgress& progress);

}  // namespace agave::trainer
