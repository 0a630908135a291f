#include "trainer/parallel_pretraining.h"

#include <fmt/format.h>

#include <stdexcept>

#include "checkpoint/sharded_checkpoint.h"
#include "cluster/activity.h"

namespace agave::trainer {
namespace {

const PhaseOptions& phase_of(const std::vector<PhaseOptions>& phases, PretrainHalf half) {
  const PhaseKind kind =
      half == PretrainHalf::kVae ? PhaseKind::kPretrainVae : PhaseKind::kPretrainPixelCnn;
  for (size_t i = 0; i < 2 && i < phases.size(); ++i) {
    if (phases[i].kind == kind) return phases[i];
  }
  throw std::invalid_argument(std::string("no ") + half_name(half) + " phase among the first two");
}

// How a half ended, as every rank of the run learns it.
enum class HalfEnd { kDone, kStopped, kCheckpointError, kNonFinite };

struct HalfOutcome {
  HalfEnd end = HalfEnd::kDone;
  std::string error;
};

HalfOutcome train_half(const TrainerSetup& run, PretrainHalf half, cluster::Communicator& comm) {
  try {
    const auto r = Trainer(half_setup(run, half), comm).run();
    return {r.stopped ? HalfEnd::kStopped : HalfEnd::kDone, ""};
  } catch (const checkpoint::CheckpointError& e) {
    return {HalfEnd::kCheckpointError, e.what()};
  } catch (const NonFiniteError& e) {
    return {HalfEnd::kNonFinite, e.what()};
  }
}

// Whether the run starts with the halves: not when it has a checkpoint of its own (it merged
// before) or continues from a named one. The run's rank 0 looks, for every rank alike.
bool needs_pretraining(const TrainerSetup& setup, cluster::Communicator& comm) {
  std::string mine = "0";
  if (comm.rank() == 0 && setup.resume.mode != checkpoint::ResumeRequest::Mode::kFolder &&
      !checkpoint::ShardedCheckpoint::latest(checkpoint_root(setup))) {
    mine = "1";
  }
  return comm.all_gather_string(mine).front() == "1";
}

}  // namespace

const char* half_name(PretrainHalf half) {
  return phase_name(half == PretrainHalf::kVae ? PhaseKind::kPretrainVae
                                               : PhaseKind::kPretrainPixelCnn);
}

namespace {

// Ranks [0, k) pretrain the VAE.
int vae_rank_count(int size, int64_t vae_ranks) {
  const int64_t k = vae_ranks > 0 ? vae_ranks : size / 2;
  if (size > 1 && k >= size) {
    throw std::invalid_argument("train.pretrain_vae_ranks = " + std::to_string(vae_ranks) +
                                " leaves none of the run's " + std::to_string(size) +
                                " ranks to pretrain the PixelCNN");
  }
  return static_cast<int>(k);
}

}  // namespace

std::pair<int, int> half_ranks(PretrainHalf half, int size, int64_t vae_ranks) {
  if (size == 1) return {0, 0};
  const int k = vae_rank_count(size, vae_ranks);
  return half == PretrainHalf::kVae ? std::pair{0, k - 1} : std::pair{k, size - 1};
}

std::vector<PretrainHalf> halves_of_rank(int rank, int size, int64_t vae_ranks) {
  if (size == 1) return {PretrainHalf::kVae, PretrainHalf::kPixelCnn};
  return {rank < vae_rank_count(size, vae_ranks) ? PretrainHalf::kVae : PretrainHalf::kPixelCnn};
}

void check_parallel_phases(const std::vector<PhaseOptions>& phases) {
  const bool ok = phases.size() >= 2 && ((phases[0].kind == PhaseKind::kPretrainVae &&
                                          phases[1].kind == PhaseKind::kPretrainPixelCnn) ||
                                         (phases[0].kind == PhaseKind::kPretrainPixelCnn &&
                                          phases[1].kind == PhaseKind::kPretrainVae));
  if (ok) return;
  std::string names;
  for (const auto& p : phases)
    names += (names.empty() ? "" : ", ") + std::string(phase_name(p.kind));
  throw std::invalid_argument(
      "parallel pretraining needs the phases to start with one pretrain_vae and one "
      "pretrain_pixelcnn phase (either order), got [" +
      names + "]");
}

int64_t pretraining_steps(const std::vector<PhaseOptions>& phases) {
  return phase_of(phases, PretrainHalf::kVae).steps +
         phase_of(phases, PretrainHalf::kPixelCnn).steps;
}

std::string describe_parallel_pretraining(const TrainOptions& train, int first_rank, int size) {
  auto who = [&](PretrainHalf h) {
    const auto [a, b] = half_ranks(h, size, train.pretrain_vae_ranks);
    return a == b ? fmt::format("rank {} pretrains", first_rank + a)
                  : fmt::format("ranks {}-{} pretrain", first_rank + a, first_rank + b);
  };
  return fmt::format(
      "{} the VAE ({} steps){} {} the PixelCNN without f(z) ({} steps); then {} the full model "
      "from step {}",
      who(PretrainHalf::kVae), phase_of(train.phases, PretrainHalf::kVae).steps,
      size == 1 ? ", then" : " while", who(PretrainHalf::kPixelCnn),
      phase_of(train.phases, PretrainHalf::kPixelCnn).steps,
      size == 1 ? "it trains" : fmt::format("all {} ranks train", size),
      pretraining_steps(train.phases));
}

TrainerSetup half_setup(const TrainerSetup& run, PretrainHalf half) {
  TrainerSetup s = run;
  s.run_name = run.run_name + "/" + half_name(half);
  s.output_dir = run.output_dir + "/" + half_name(half);
  // Always inside the run folder: a checkpoint.dir holds the run's own step-* folders, and
  // pruning removes any other folder there.
  s.checkpoint.dir.clear();
  PhaseOptions phase = phase_of(run.train.phases, half);
  if (half == PretrainHalf::kPixelCnn) phase.conditioned = false;
  s.train.phases = {phase};
  s.train.steps = phase.steps;
  s.train.pretrain = PretrainSchedule::kSequential;
  s.eval.every = 0;
  s.eval.at_start = false;
  s.pretrain_half = true;
  s.merge_from.reset();
  // An explicit --resume FOLDER is the merged run's; never skips the halves (needs_pretraining).
  if (s.resume.mode == checkpoint::ResumeRequest::Mode::kFolder)
    s.resume = checkpoint::ResumeRequest{};
  return s;
}

PretrainedHalves pretrained_halves(const TrainerSetup& run) {
  return {half_setup(run, PretrainHalf::kVae).output_dir + "/checkpoints",
          half_setup(run, PretrainHalf::kPixelCnn).output_dir + "/checkpoints"};
}

TrainResult train_with_parallel_pretraining(TrainerSetup setup, cluster::Communicator& run_comm,
                                            const HalfCommunicator& half_comm) {
  if (needs_pretraining(setup, run_comm)) {
    HalfOutcome outcome;
    const int64_t vae_ranks = setup.train.pretrain_vae_ranks;
    for (const auto half : halves_of_rank(run_comm.rank(), run_comm.size(), vae_ranks)) {
      auto& comm = half_comm(half, vae_ranks);
      outcome = train_half(setup, half, comm);
      if (outcome.end != HalfEnd::kDone) break;
    }
    {
      // One half may train for hours longer than the other.
      cluster::ActivityScope named("waiting for the other pretraining half");
      run_comm.barrier_while_alive("the pretraining halves of run " + setup.run_name);
    }
    // The worst end of any rank is the run's, on every rank.
    const auto ends = run_comm.all_gather_string(std::to_string(static_cast<int>(outcome.end)) +
                                                 ":" + outcome.error);
    HalfEnd worst = HalfEnd::kDone;
    std::string error;
    for (const auto& e : ends) {
      const auto colon = e.find(':');
      const auto end = static_cast<HalfEnd>(std::stoi(e.substr(0, colon)));
      if (static_cast<int>(end) > static_cast<int>(worst)) {
        worst = end;
        error = e.substr(colon + 1);
      }
    }
    switch (worst) {
      case HalfEnd::kCheckpointError:
        throw checkpoint::CheckpointError(error);
      case HalfEnd::kNonFinite:
        throw NonFiniteError(error);
      case HalfEnd::kStopped: {
        TrainResult stopped;
        stopped.stopped = true;
        return stopped;
      }
      case HalfEnd::kDone:
        break;
    }
    setup.merge_from = pretrained_halves(setup);
  }
  return Trainer(std::move(setup), run_comm).run();
}

}  // namespace agave::trainer
