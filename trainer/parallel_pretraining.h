#pragma once
// train.pretrain: parallel, paper §4: "To speed up training, we independently pretrain the VAE
// and pixelCNN in parallel, and then continue training the full model with both decoders".
//
// The contract:
//  - The config's phases start with one pretrain_vae and one pretrain_pixelcnn phase, in either
//    order (launcher/config.cpp refuses other lists); N_vae and N_pixelcnn are their steps.
//  - A run's n ranks split in two halves: run ranks [0, k) pretrain the VAE, [k, n) the
//    PixelCNN, at the same time; k = train.pretrain_vae_ranks, or n/2 when that is 0. One rank
//    trains both halves, one after the other; they are independent all the same.
//  - Each half is a run of its own (half_setup): its own communicator and loader over the same
//    global batch, steps counted from 0, the run's seed and the full model's initial weights
//    (data-dependent init included), and its phase alone. The VAE half trains pretrain_vae as
//    configured (aux + λ·KL); the PixelCNN half trains pretrain_pixelcnn with conditioned: false
//    (no f(z): the conditioning stream's contribution is zero and its parameters keep their
//    initial values). So each half is bit-identical to a run whose phases are that phase alone.
//  - A half writes <run>/pretrain_vae/ or <run>/pretrain_pixelcnn/ (config.yaml,
//    metrics.jsonl, checkpoints/, summary.json naming its last checkpoint), evaluates nothing,
//    and resumes from its own checkpoints after a stop.
//  - The halves meet (a wait bounded by liveness: one half may take much longer); a failure or a
//    stop of either half is the whole run's. Then every rank of the run loads the VAE's
//    parameters, buffers, optim::Adamax state and EMA shadow from the VAE half's final checkpoint
//    and the PixelCNN's from the PixelCNN half's (Trainer with merge_from), and the run continues
//    at step N_vae + N_pixelcnn, at that step's data position, in its own checkpoint folder: the
//    phase schedule from there on is the sequential one's.
//  - A run with a checkpoint of its own has merged already, and --resume FOLDER names where it
//    continues: neither pretrains.
// Wall time: each network trains on half the ranks, so this is faster than the sequential
// schedule only where data-parallel scaling is poor or both pretrainings cost about the same
// (docs/performance.md measures it).
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cluster/communicator.h"
#include "trainer/options.h"
#include "trainer/trainer.h"

namespace agave::trainer {

enum class PretrainHalf { kVae, kPixelCnn };

// "pretrain_vae", "pretrain_pixelcnn": the phase and the half's folder under the run's.
const char* half_name(PretrainHalf half);

// The first and last run rank of a run of `size` ranks that train `half`; `vae_ranks` is
// train.pretrain_vae_ranks (0: half). Throws std::invalid_argument when it leaves a half no rank.
std::pair<int, int> half_ranks(PretrainHalf half, int size, int64_t vae_ranks);
// The halves run rank `rank` of `size` trains, in order.
std::vector<PretrainHalf> halves_of_rank(int rank, int size, int64_t vae_ranks);

// Throws std::invalid_argument (naming the phases) unless `phases` start with one pretrain_vae
// and one pretrain_pixelcnn phase.
void check_parallel_phases(const std::vector<PhaseOptions>& phases);
// N_vae + N_pixelcnn: the step the merged run continues at.
int64_t pretraining_steps(const std::vector<PhaseOptions>& phases);

// For --dry-run: which ranks (job ranks from `first_rank`) pretrain which network, and where
// all of them continue.
std::string describe_parallel_pretraining(const TrainOptions& train, int first_rank, int size);

// The run of one half (see the contract above).
TrainerSetup half_setup(const TrainerSetup& run, PretrainHalf half);
// The halves' checkpoint folders of a run.
PretrainedHalves pretrained_halves(const TrainerSetup& run);

// This rank's communicator for its half `mine` of a split with `vae_ranks` (as half_ranks):
// collective over the run's ranks when it splits them (the run's own communicator when it has
// one rank).
using HalfCommunicator =
    std::function<cluster::Communicator&(PretrainHalf mine, int64_t vae_ranks)>;

// Collective over `run_comm`: trains the run with train.pretrain: parallel. Throws the same
// checkpoint::CheckpointError or NonFiniteError on every rank of the run when either half (or the
// merged run) fails so.
TrainResult train_with_parallel_pretraining(TrainerSetup setup, cluster::Communicator& run_comm,
                                            const HalfCommunicator& half_comm);

}  // namespace agave::trainer
