#include "trainer/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "checkpoint/sharded_checkpoint.h"
#include "checkpoint/training_state.h"
#include "cluster/activity.h"
#include "data/loader.h"
#include "io/atomic_file.h"
#include "model/agave.h"
#include "model/ema.h"
#include "model/example_random.h"
#include "monitoring/metrics_exporter.h"
#include "monitoring/metrics_log.h"
#include "monitoring/progress_bar.h"
#include "monitoring/progress_output.h"
#include "optim/adamax.h"
#include "trainer/image_grid.h"
#include "trainer/parallel_pretraining.h"
#include "trainer/phase.h"
#include "trainer/precision.h"
#include "trainer/precision_probe.h"
#include "trainer/run_labels.h"
#include "trainer/seed.h"
#include "trainer/step_report.h"
#include "trainer/stop_request.h"
#include "trainer/train_step.h"
#include "version/version.h"

namespace agave::trainer {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Sum of every parameter in double precision: equal on all ranks while replicas agree.
double parameter_checksum(torch::nn::Module& m) {
  std::vector<torch::Tensor> sums;
  for (const auto& p : m.parameters()) sums.push_back(p.detach().to(torch::kFloat64).sum());
  return torch::stack(sums).sum().item<double>();  // one host sync, not one per tensor
}

torch::Tensor cpu_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_cpu_rng_state(const torch::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

data::LoaderOptions train_loader_options(const TrainerSetup& s, int rank, int world) {
  data::LoaderOptions lo;
  lo.batch_size = s.train.batch_size / world;
  lo.rank = rank;
  lo.world = world;
  lo.seed = s.seed;
  lo.prefetch = s.data.prefetch_batches;
  lo.shuffle = s.data.shuffle;
  lo.verify_checksums = s.data.verify_checksums;
  lo.drop_last = true;  // lock-step ranks need equal batch counts
  return lo;
}

// train.precision as rank 0 resolves it (`auto` on a CPU: its probe, measured or cached), so
// every rank computes alike even where their CPUs would time differently. `note`: rank 0's
// remark on the probe, if any.
Numerics agreed_numerics(const TrainerSetup& s, cluster::Communicator& comm, std::string& note) {
  cluster::ActivityScope named("precision");
  std::string mine;
  if (comm.rank() == 0) {
    mine = to_json(resolve_numerics(s.train.precision, s.device, &note)).dump();
  }
  return numerics_from_json(nlohmann::json::parse(comm.all_gather_string(mine).front()));
}

// One run from its first to its last step: the parts below, in the order run() calls them.
class TrainingRun {
 public:
  TrainingRun(const TrainerSetup& setup, cluster::Communicator& comm)
      : s_(setup),
        comm_(comm),
        rank_(comm.rank()),
        world_(comm.size()),
        lead_(rank_ == 0),
        schedule_(setup.train.phases),
        numerics_(agreed_numerics(setup, comm, numerics_note_)) {}

  TrainResult run() {
    cluster::set_activity_run(s_.run_name);
    open_outputs();
    open_loader();
    open_report();
    report_->say("numerics " + describe_choice(numerics_) +
                 (numerics_note_.empty() ? "" : "; " + numerics_note_));
    const auto start = checkpoint::decide_resume(
        s_.resume, checkpoint_root(s_), s_.run_name,
        checkpoint::model_signature(s_.model, data::dataset_name(s_.data.dataset)), comm_);
    refuse_checkpoint_past_the_end(start);
    // Complete means summary.json evaluated this very checkpoint at the configured last step:
    // a run that ended (killed, failed, stopped) between its last checkpoint and its final
    // evaluation still owes the evaluation, and a summary of an earlier end (a run since
    // extended) describes other weights.
    const bool complete =
        !start.fresh() && start.meta.step >= schedule_.total_steps() && summary_describes(start);
    settle_config(start, complete);
    const bool merge = start.fresh() && s_.merge_from.has_value();
    build_model(start.fresh() && !merge);
    const int64_t first_step = merge           ? merge_halves(*s_.merge_from)
                               : start.fresh() ? 0
                                               : restore(start);
    last_checkpoint_ = start.dir;
    result_.resumed_from = start.dir;
    result_.steps = first_step;  // steps of the whole run, also across resumes
    // A stop that came while the data was checked or the checkpoint loaded: nothing was trained
    // since the newest checkpoint, so there is nothing to save.
    if (agree_on_stop(comm_)) {
      report_->say("stop requested before step " + std::to_string(first_step) +
                   "; nothing trained since the last checkpoint");
      result_.stopped = true;
      return result_;
    }
    if (complete) {
      report_->say("already complete at step " + std::to_string(first_step) + "; nothing to train");
      result_.already_complete = true;
      return result_;
    }
    set_stale_summary_aside();
    if (first_step >= schedule_.total_steps()) {
      report_->say("checkpoint at the last step " + std::to_string(first_step) +
                   " but no summary.json: running the final evaluation");
      finish();
      return result_;
    }
    if (progress_ && progress_->draws_bar()) {
      bar_ = progress_->start("train " + s_.run_name, schedule_.total_steps());
      bar_->update(first_step);
      report_->set_progress_bar(bar_.get());
    }
    if (s_.eval.at_start && first_step == 0 && evaluate_and_report(0).interrupted) {
      result_.stopped = true;  // nothing trained yet, so nothing to save
      return result_;
    }
    for (int64_t step = first_step; step < schedule_.total_steps(); ++step) {
      if (!train_one(step)) return result_;  // stopped on request, after a checkpoint
    }
    finish();
    return result_;
  }

 private:
  // ---- set-up -------------------------------------------------------------------------------

  std::string summary_file() const { return s_.output_dir + "/summary.json"; }

  // Whether summary.json reports the final evaluation of checkpoint `start` (its folder and
  // step, as write_summary records them). Rank 0's view of the file system decides, for every
  // rank alike.
  bool summary_describes(const checkpoint::ResumePoint& start) const {
    std::string mine = "0";
    if (lead_ && !start.fresh()) {
      try {
        const auto j = nlohmann::json::parse(std::ifstream(summary_file()));
        const bool same =
            j.at("checkpoint").get<std::string>() == fs::path(start.dir).filename().string() &&
            j.at("step").get<int64_t>() == start.meta.step;
        mine = same ? "1" : "0";
      } catch (const std::exception&) {  // none, unreadable, or older than the fields
      }
    }
    return comm_.all_gather_string(mine).front() == "1";
  }

  // A summary.json that does not describe the checkpoint this run continues from (an earlier
  // end of a run since extended, a final evaluation never finished) must not stand for it: it
  // is kept beside as summary.stale.json until the run writes its own.
  void set_stale_summary_aside() const {
    if (!lead_ || !fs::exists(summary_file())) return;
    const std::string aside = s_.output_dir + "/summary.stale.json";
    fs::rename(summary_file(), aside);
    report_->say("summary.json did not describe checkpoint " +
                 (last_checkpoint_.empty() ? std::string("(none: a fresh start)")
                                           : fs::path(last_checkpoint_).filename().string()) +
                 " at the configured " + std::to_string(schedule_.total_steps()) +
                 " steps: moved to " + aside);
  }

  // A checkpoint past the configured steps belongs to a longer run (or a corrupt manifest):
  // training it "to" fewer steps would report its weights as those of this config.
  void refuse_checkpoint_past_the_end(const checkpoint::ResumePoint& start) const {
    if (start.fresh() || start.meta.step <= schedule_.total_steps()) return;
    throw checkpoint::CheckpointError(
        start.dir + " is at step " + std::to_string(start.meta.step) + ", past the " +
        std::to_string(schedule_.total_steps()) +
        " steps this config trains; raise the steps, resume an earlier " +
        "checkpoint (--resume DIR) or choose another run.name");
  }

  std::string config_file() const { return s_.output_dir + "/config.yaml"; }

  // The run folder stays one config (trainer/config_history.h): rank 0 compares this config
  // with the run's recorded one and every rank learns the verdict. A refusal writes nothing; an
  // accepted change is recorded before config.yaml is replaced; a finished run keeps its file.
  // A refusal is the user's to fix (ConfigDriftError, exit 2); failing to read or record the
  // config (an unreadable config.yaml, a full disk) is an error like any other (exit 1), so
  // that a supervisor may try again.
  void settle_config(const checkpoint::ResumePoint& start, bool complete) {
    static const std::string kRefused = "refused:", kFailed = "failed:";
    std::string verdict;
    if (lead_) {
      try {
        const auto refusal = settle_config_on_lead(start, complete);
        if (!refusal.empty()) verdict = kRefused + refusal;
      } catch (const std::exception& e) {
        verdict = kFailed + "run " + s_.run_name + ": " + e.what();
      }
    }
    {
      cluster::ActivityScope named("config check");
      verdict = comm_.all_gather_string(verdict).front();
    }
    if (verdict.rfind(kRefused, 0) == 0) throw ConfigDriftError(verdict.substr(kRefused.size()));
    if (!verdict.empty()) throw std::runtime_error(verdict.substr(kFailed.size()));
  }

  std::string settle_config_on_lead(const checkpoint::ResumePoint& start, bool complete) {
    std::string recorded;
    if (fs::exists(config_file())) {
      recorded = read_recorded_config(config_file());
    } else if (!start.fresh()) {
      recorded = start.meta.config;
    }
    const int64_t step = start.fresh() ? 0 : start.meta.step;
    ConfigDrift drift;
    if (!recorded.empty() && s_.config_drift) {
      drift = s_.config_drift(recorded, s_.resolved_config, step);
    }
    // A finished pretraining half is its merged run's business: that run's own check decides.
    const bool finished = complete && !s_.pretrain_half;
    if (!drift.result.empty() && !start.fresh() && (finished || !s_.allow_config_change)) {
      return drift_refusal(s_.output_dir, step, drift, finished);
    }
    if (complete) {
      if (!drift.empty()) {
        report_->say(
            "the run is finished; its config.yaml is kept and these changes are not "
            "applied: " +
            join_changes(drift.other));
      }
      return "";
    }
    if (!drift.empty()) {
      // Without a checkpoint the run starts over: the old config is replaced, not mixed in.
      const auto all = drift.all();
      report_->say((start.fresh() ? std::string("starting over; config changed: ")
                                  : "config changed since step " + std::to_string(step) + ": ") +
                   join_changes(all) + " (recorded in " + config_history_file(s_.output_dir) + ")");
      ConfigChangeRecord record{step, drift, s_.allow_config_change && !drift.result.empty(),
                                recorded};
      append_config_history(s_.output_dir, record);
      if (log_) {
        log_->write({{"event", "config_change"},
                     {"step", step},
                     {"result_changes", drift.result},
                     {"other_changes", drift.other}});
      }
    }
    io::write_file_atomically(config_file(), s_.resolved_config);
    return "";
  }

  void open_outputs() {
    if (lead_) {
      fs::create_directories(s_.output_dir);
      if (s_.monitoring.jsonl) {
        log_ = std::make_unique<monitoring::MetricsLog>(s_.output_dir + "/metrics.jsonl");
      }
    }
    // Prometheus metrics from the run's rank 0 (or every rank, to compare their step times).
    if (s_.monitoring.prometheus && (lead_ || s_.monitoring.every_rank)) {
      exporter_ = std::make_unique<monitoring::MetricsExporter>(
          s_.monitoring, run_labels(s_.run_name, s_.loss, s_.model.aux(), s_.world_rank));
    }
    // One process draws on the launcher's terminal: the job's world rank 0.
    if (lead_) {
      progress_ =
          std::make_unique<monitoring::ProgressOutput>(s_.monitoring.progress, s_.world_rank == 0);
    }
  }

  // What the run reports through, once the loader knows the batch and the test split's size.
  void open_report() {
    const double to_bpd =
        1.0 / (static_cast<double>(s_.model.image_channels() * s_.model.image_size() *
                                   s_.model.image_size()) *
               std::log(2.0));
    WorkPlan plan;
    plan.phases = s_.train.phases;
    plan.has_latents = model::has_latents(s_.model.kind());
    plan.has_pixelcnn = model::has_pixelcnn(s_.model.kind());
    plan.global_batch = loader_->global_batch_size();
    plan.eval = s_.eval;
    plan.test_images = test_images_;
    plan.final_eval = !s_.pretrain_half;
    plan.checkpoint_every = s_.checkpoint.every;
    report_ = std::make_unique<StepReport>(s_.run_name, world_, std::move(plan), to_bpd,
                                           ReportSinks{exporter_.get(), log_.get(), lead_});
    if (exporter_) report_->say("metrics at " + exporter_->url());
  }

  void open_loader() {
    const auto lo = train_loader_options(s_, rank_, world_);
    loader_ = std::make_unique<data::ShardLoader>(s_.data.shards, "train", lo);
    if (loader_->batches_per_epoch() < 1) {
      throw std::runtime_error(s_.data.shards + ": the train split has too few images for a " +
                               "batch of " + std::to_string(lo.batch_size) + " per rank");
    }
    // Every split the run reads is opened now (manifest, every shard's header): a broken test
    // shard must stop the run before it trains, not after.
    data::LoaderOptions test;
    test.rank = rank_;
    test.world = world_;
    test.batch_size = 1;
    test.prefetch = 1;
    test.shuffle = false;
    test_images_ = data::ShardLoader(s_.data.shards, "test", test).split_size();
    checkpoint::ShardedCheckpoint::AfterShards after_shards;
    if (s_.faults) {
      after_shards = [faults = s_.faults](int64_t step) { faults->after_checkpoint_shards(step); };
    }
    checkpoints_ = std::make_unique<checkpoint::ShardedCheckpoint>(
        checkpoint_root(s_), s_.checkpoint.keep, comm_, std::move(after_shards));
  }

  // Identical initial weights everywhere: the same seed, then rank 0's broadcast (which also
  // covers data-dependent init on the first global batch of a fresh run).
  void build_model(bool fresh) {
    torch::manual_seed(s_.seed);
    model_ = model::Agave(s_.model);
    model_->to(s_.device);
    if (fresh && lead_) data_dependent_init();
    cluster::broadcast_module_state(*model_, comm_);
    apply_layout(numerics_, *model_);
    ema_ = std::make_unique<model::Ema>(*model_, s_.train.ema_decay, s_.train.ema_warmup);
    // The model's draws in training steps (z ~ q, dropout) come from per-example streams;
    // anything else random differs per rank from here on.
    torch::manual_seed(rank_seed(s_.seed, rank_));
    const auto& o = s_.train.optimizer;
    optimizer_ = std::make_unique<optim::Adamax>(
        model_->parameters(), optim::AdamaxOptions(o.lr).beta1(o.beta1).beta2(o.beta2).eps(o.eps));
    TrainStepOptions so;
    so.grad_clip = s_.train.grad_clip;
    so.bf16 = numerics_.bf16;
    so.seed = s_.seed;
    so.buckets = {s_.cluster.bucket_mb, std::min(1.0, s_.cluster.bucket_mb),
                  cluster::overlaps_backward(s_.cluster.overlap, comm_.backend())};
    step_ = std::make_unique<TrainStep>(model_, *optimizer_, *ema_, comm_, so, s_.faults);
  }

  // On the first global batch (what one rank holding the whole batch reads), so the initial
  // weights are the same for any number of ranks.
  void data_dependent_init() {
    auto lo = train_loader_options(s_, 0, 1);
    lo.batch_size = loader_->global_batch_size();
    lo.prefetch = 1;
    data::ShardLoader first_loader(s_.data.shards, "train", lo);
    const auto first = first_loader.next();
    torch::NoGradGuard no_grad;
    model::ExampleRandomScope rng(model::example_keys(s_.seed, -1, first->indices).to(s_.device));
    model_->data_init(first->images.to(s_.device));
  }

  // Loads the agreed checkpoint; returns the step training continues at.
  int64_t restore(const checkpoint::ResumePoint& from) {
    const auto& meta = from.meta;
    checkpoint::TrainingState state(*model_, *ema_, *optimizer_);
    std::map<std::string, torch::Tensor> rng = {{checkpoint::keys::kCpuRng, torch::Tensor()}};
    const bool same_ranks = checkpoints_->load(from.dir, state.tensors(), &rng);
    state.apply_loaded_steps();
    // Same ranks: each continues its own random stream, so the run is bit-identical to one
    // never stopped. Other ranks: fresh per-rank streams from (seed, step, rank).
    if (same_ranks) {
      set_cpu_rng_state(rng.at(checkpoint::keys::kCpuRng));
    } else {
      torch::manual_seed(rank_seed(s_.seed, rank_, meta.step));
    }
    // The epoch order is the same for any world size; a changed global batch (train.batch_size)
    // maps the position to the batch holding the first image not yet trained on.
    data::LoaderPosition pos{meta.loader_epoch, meta.loader_index};
    if (meta.loader_global_batch > 0 && meta.loader_global_batch != loader_->global_batch_size()) {
      pos = data::ShardLoader::map_position(pos, meta.loader_global_batch,
                                            loader_->global_batch_size());
      report_->say("global batch " + std::to_string(meta.loader_global_batch) + " -> " +
                   std::to_string(loader_->global_batch_size()) + ": data position epoch " +
                   std::to_string(meta.loader_epoch) + " batch " +
                   std::to_string(meta.loader_index) + " -> batch " + std::to_string(pos.index));
    }
    loader_->restore({pos.epoch, std::min(pos.index, loader_->batches_per_epoch())});
    report_->say("resumed from " + from.dir + " at step " + std::to_string(meta.step) +
                 " (written by " + std::to_string(meta.world_size) + " rank(s), now " +
                 std::to_string(world_) + ")");
    return meta.step;
  }

  // The model of a parallel pretraining (trainer/parallel_pretraining.h): each network, with its
  // optim::Adamax state and EMA shadow, from the final checkpoint of the half that trained it.
  // Returns the step the run continues at: after both pretraining phases.
  int64_t merge_halves(const PretrainedHalves& halves) {
    const int64_t step = pretraining_steps(s_.train.phases);
    checkpoint::TrainingState state(*model_, *ema_, *optimizer_);
    checkpoint::TensorMap vae, pixelcnn;
    for (const auto& [key, tensor] : state.tensors()) {
      // model/pixelcnn.…, ema/pixelcnn.…, optim/pixelcnn.…/exp_avg: the PixelCNN half's.
      const bool of_pixelcnn = key.compare(key.find('/') + 1, 9, "pixelcnn.") == 0;
      (of_pixelcnn ? pixelcnn : vae)[key] = tensor;
    }
    const auto vae_dir = final_half_checkpoint(halves.vae_checkpoints, PretrainHalf::kVae);
    const auto pixelcnn_dir =
        final_half_checkpoint(halves.pixelcnn_checkpoints, PretrainHalf::kPixelCnn);
    checkpoint::ShardedCheckpoint::load_subset(vae_dir, vae);
    checkpoint::ShardedCheckpoint::load_subset(pixelcnn_dir, pixelcnn);
    state.apply_loaded_steps();
    // A new start of the per-rank streams, as for a resume on other ranks.
    torch::manual_seed(rank_seed(s_.seed, rank_, step));
    // Where a sequential run is after `step` batches (skipped steps read their batch too).
    const int64_t per_epoch = loader_->batches_per_epoch();
    loader_->restore({step / per_epoch, step % per_epoch});
    report_->say("merged the pretrained VAE of " + vae_dir + " and PixelCNN of " + pixelcnn_dir +
                 ": continuing at step " + std::to_string(step));
    return step;
  }

  // The newest complete checkpoint under `root`, as the run's rank 0 sees it: it must be the
  // half's last step, of this config's model.
  std::string final_half_checkpoint(const std::string& root, PretrainHalf half) const {
    std::string mine;
    if (lead_) {
      try {
        const auto dir = checkpoint::ShardedCheckpoint::latest(root);
        if (!dir)
          throw checkpoint::CheckpointError(root + ": no checkpoint of the pretraining half");
        const auto meta = checkpoint::ShardedCheckpoint::read_meta(*dir);
        const int64_t steps = half_setup(s_, half).train.steps;
        if (meta.step != steps) {
          throw checkpoint::CheckpointError(*dir + " is at step " + std::to_string(meta.step) +
                                            ", not at the " + std::to_string(steps) + " steps of " +
                                            half_name(half));
        }
        if (meta.model_signature !=
            checkpoint::model_signature(s_.model, data::dataset_name(s_.data.dataset))) {
          throw checkpoint::CheckpointError(*dir + ": " + half_name(half) + " of another model");
        }
        mine = "ok:" + *dir;
      } catch (const checkpoint::CheckpointError& e) {
        mine = std::string("error:") + e.what();
      }
    }
    const auto agreed = comm_.all_gather_string(mine).front();
    if (agreed.rfind("ok:", 0) != 0)
      throw checkpoint::CheckpointError(agreed.substr(agreed.find(':') + 1));
    return agreed.substr(3);
  }

  // ---- the loop -----------------------------------------------------------------------------

  // One step and what follows it (report, eval, profile, checkpoint); false after a stop.
  bool train_one(int64_t step) {
    profile_around(step);
    enter_phase_of(step);
    const auto step_start = Clock::now();
    double data_seconds = 0;
    const auto batch = next_batch(data_seconds);
    const auto outcome = step_->run(batch.images, batch.indices, step);
    account(step, outcome);
    report_->add(outcome, seconds_since(step_start), data_seconds);

    const int64_t done = step + 1;
    const bool last = done == schedule_.total_steps();
    // A window never mixes phases: their terms differ.
    const bool phase_ends = last || schedule_.index_at(done) != phase_index_;
    if (done % s_.monitoring.log_every == 0 || phase_ends) {
      const double lr = optimizer_->options().lr();
      result_.last_loss_bpd =
          report_->flush(done, step_->phase().kind, result_.skipped_steps, lr).loss_bpd;
    }
    const bool eval_stopped = s_.eval.every > 0 && done % s_.eval.every == 0 && !last &&
                              evaluate_and_report(done).interrupted;
    if (bar_) bar_->update(done);
    if (outcome.stop || eval_stopped) {
      report_->say("stop requested: checkpointing at step " + std::to_string(done));
      save_checkpoint(done);
      result_.stopped = true;
      return false;
    }
    if (last || (s_.checkpoint.every > 0 && done % s_.checkpoint.every == 0)) {
      save_checkpoint(done);
    }
    return true;
  }

  void enter_phase_of(int64_t step) {
    const size_t pi = schedule_.index_at(step);
    if (pi == phase_index_) return;
    phase_index_ = pi;
    const auto& phase = schedule_.at(step);
    const auto spec = phase_spec(phase, s_.loss, s_.model.vae().free_bits(), s_.model.kind());
    step_->set_phase(spec);
    if (exporter_) exporter_->set_phase(phase_name(phase.kind));
    report_->say(
        fmt::format("phase {}: steps {}-{}, {} parameter tensors train on {}, λ {}, free "
                    "bits {}",
                    phase_name(phase.kind), schedule_.phase_start(pi),
                    schedule_.phase_start(pi) + phase.steps - 1, step_->trainable().size(),
                    terms_text(spec.terms), spec.lambda, spec.free_bits));
  }

  data::Batch next_batch(double& data_seconds) {
    const double before = loader_->wait_seconds();
    auto batch = loader_->next();
    if (!batch) batch = loader_->next();  // the epoch ended: start the next one
    data_seconds = loader_->wait_seconds() - before;
    return std::move(*batch);
  }

  // Skips count towards the give-up limit; a step that trained resets it.
  void account(int64_t step, const StepOutcome& outcome) {
    if (outcome.applied) {
      nonfinite_in_a_row_ = 0;
      ++result_.steps;
      return;
    }
    ++result_.skipped_steps;
    if (++nonfinite_in_a_row_ >= s_.train.max_nonfinite_steps) {
      throw NonFiniteError("run " + s_.run_name + ": " + std::to_string(nonfinite_in_a_row_) +
                           " steps in a row had a non-finite loss or gradient (last at step " +
                           std::to_string(step) + ": " + outcome.skip_reason +
                           "); lower train.optimizer.lr or set train.grad_clip");
    }
    report_->skipped(step, outcome.skip_reason);
  }

  // A chrome://tracing profile of a few steady-state steps (after two warm-up steps) on rank 0.
  void profile_around(int64_t step) {
    if (!lead_ || s_.monitoring.profile_steps <= 0) return;
    if (profile_from_ < 0) profile_from_ = step + 2;
    const int64_t to = profile_from_ + s_.monitoring.profile_steps;
    const std::string file = s_.output_dir + "/profile-rank0.json";
    if (step == profile_from_) {
      profile_ = std::make_unique<torch::autograd::profiler::RecordProfile>(file);
    } else if (step == to && profile_) {
      profile_.reset();  // writes the file
      report_->say("profile of steps " + std::to_string(profile_from_ + 1) + "-" +
                   std::to_string(to) + ": " + file);
    }
  }

  // ---- what steps lead to -------------------------------------------------------------------

  // The evaluation after `step` steps (`final`: on eval.final_subset images) and, on rank 0,
  // the picture sheets of the same weights. A stop request ends the evaluation at the next
  // batch on every rank (`interrupted`): its partial numbers are not reported, and the caller
  // checkpoints or leaves it to the restart.
  EvalResult evaluate_and_report(int64_t step, bool final = false) {
    EvalOptions options = s_.eval;
    if (final) options.subset = s_.eval.final_subset;
    const std::string line_label = report_->evaluation_starts(step, final, options.subset);
    // A bar is named like the training bar ("train RUN"), lines like the run's other lines.
    const std::string label = progress_ && progress_->draws_bar()
                                  ? "eval " + s_.run_name + " step " + std::to_string(step)
                                  : line_label;
    std::unique_ptr<monitoring::ProgressBar> bar;  // rank 0: images done, rate, ETA
    EvalControl control;
    control.stop = &stop_requested();
    control.progress = [&](const EvalProgressPoint& p) {
      if (progress_ && !bar && (bar = progress_->start(label, p.total))) bar->set_unit("img");
      if (bar) bar->update(p.job_done());
      if (s_.faults && p.done > 0) s_.faults->on_eval_batch(step, rank_, p.done);
    };
    if (s_.faults) s_.faults->on_eval(step, rank_);
    if (s_.eval.use_ema) ema_->swap(*model_);
    auto r = evaluate(model_, s_.data.shards, options, comm_, s_.seed, s_.device, control);
    if (bar) bar->finish();
    r.weights = s_.eval.use_ema ? EvalWeights::kEma : EvalWeights::kLive;
    const auto pictures_start = Clock::now();
    if (s_.eval.sample_images > 0 && !r.interrupted) draw_pictures(step);
    const double pictures_seconds = seconds_since(pictures_start);
    if (s_.eval.use_ema) ema_->swap(*model_);
    if (r.interrupted) {
      report_->say("stop requested during the evaluation after step " + std::to_string(step) +
                   ": it ended early and reports nothing");
    } else {
      report_->evaluated(step, r, s_.eval.sample_images > 0 ? pictures_seconds : 0.0);
    }
    return r;
  }

  // Rank 0 draws the picture sheets (minutes at paper size on a CPU) while the others wait for
  // it as long as it answers liveness probes: a plain barrier would end a healthy job.
  void draw_pictures(int64_t step) {
    if (lead_) {
      cluster::ActivityScope named("pictures", step);
      if (s_.faults) s_.faults->on_pictures(step, rank_);
      pictures_ = write_picture_sheets(model_, s_.data.shards,
                                       {s_.eval.sample_images, s_.eval.samples_per_latent},
                                       s_.device, s_.output_dir, step);
    }
    cluster::ActivityScope named("waiting for rank 0's pictures", step);
    comm_.barrier_while_alive("rank 0's pictures of step " + std::to_string(step));
  }

  void save_checkpoint(int64_t steps_done) {
    cluster::ActivityScope named("checkpoint", steps_done);
    checkpoint::CheckpointMeta m;
    m.step = steps_done;
    m.phase = phase_name(schedule_.at(std::max<int64_t>(0, steps_done - 1)).kind);
    m.world_size = world_;
    const auto pos = loader_->position();
    m.loader_epoch = pos.epoch;
    m.loader_index = pos.index;
    m.loader_global_batch = loader_->global_batch_size();
    m.seed = s_.seed;
    m.model_signature = checkpoint::model_signature(s_.model, data::dataset_name(s_.data.dataset));
    m.config = s_.resolved_config;
    checkpoint::TrainingState state(*model_, *ema_, *optimizer_);
    const auto saved =
        checkpoints_->save(m, state.tensors(), {{checkpoint::keys::kCpuRng, cpu_rng_state()}});
    report_->checkpointed(steps_done, saved);
    last_checkpoint_ = saved.dir;
  }

  // After the last step: replicas checked, final eval, pictures, summary, linger, barrier.
  void finish() {
    report_->set_progress_bar(nullptr);
    bar_.reset();
    cluster::ActivityScope named("final eval", schedule_.total_steps());
    check_replicas_agree();
    if (s_.pretrain_half) {
      if (lead_) write_summary();
      cluster::ActivityScope barrier("end-of-half barrier");
      comm_.barrier_while_alive("end of " + s_.run_name);  // rank 0 alone wrote summary.json
      return;
    }
    // The last step's checkpoint is saved: a stop here leaves the evaluation to the restart.
    if (agree_on_stop(comm_)) {
      report_->say("stop requested before the final evaluation; it runs when the run restarts");
      result_.stopped = true;
      return;
    }
    result_.eval = evaluate_and_report(schedule_.total_steps(), /*final=*/true);
    if (result_.eval.interrupted) {
      report_->say("the final evaluation runs when the run restarts");
      result_.stopped = true;
      return;
    }
    if (lead_) {
      write_summary();
      say_where_the_results_are();
    }
    // Before the linger, which exists so that Prometheus scrapes the end: a run it never saw
    // "done" would look stalled on its dashboards.
    if (exporter_) exporter_->set_phase("done");
    linger();
    cluster::ActivityScope barrier("end-of-run barrier");
    // Rank 0 alone wrote summary.json (a slow shared file system may take a while).
    comm_.barrier_while_alive("end-of-run barrier");
  }

  // The run's last lines: where its results are, as paths to open or pass on.
  void say_where_the_results_are() const {
    report_->say("done in " + monitoring::ProgressBar::format_duration(seconds_since(started_)) +
                 "; the run's folder: " + s_.output_dir);
    report_->say("  summary     " + summary_file());
    report_->say("  pictures    " + (pictures_.empty()
                                         ? std::string("none (eval.sample_images: 0)")
                                         : join(pictures_) + " (the newest also as samples.png, " +
                                               "reconstructions.png)"));
    report_->say("  checkpoint  " + last_checkpoint_);
    if (log_) report_->say("  metrics     " + log_->path());
  }

  static std::string join(const std::vector<std::string>& paths) {
    std::string all;
    for (const auto& p : paths) all += (all.empty() ? "" : ", ") + p;
    return all;
  }

  // A silent divergence would make every later number meaningless.
  void check_replicas_agree() {
    const auto sums = comm_.all_gather(parameter_checksum(*model_));
    for (size_t r = 1; r < sums.size(); ++r) {
      if (sums[r] != sums[0]) {
        throw std::runtime_error("run " + s_.run_name + ": rank " + std::to_string(r) +
                                 "'s parameters differ from rank 0's after training");
      }
    }
    report_->say(std::to_string(world_) + " replica(s) in sync after " +
                 std::to_string(result_.steps) + " step(s), " +
                 std::to_string(result_.skipped_steps) + " skipped");
  }

  void write_summary() const {
    // A pretraining half evaluates nothing: no test numbers.
    nlohmann::json summary =
        s_.pretrain_half ? nlohmann::json::object() : to_json(result_.eval, "test_");
    summary["run"] = s_.run_name;
    // What was evaluated: a later start calls the run complete only for this checkpoint.
    summary["checkpoint"] = fs::path(last_checkpoint_).filename().string();
    summary["step"] = schedule_.total_steps();
    summary["steps"] = result_.steps;
    summary["skipped_steps"] = result_.skipped_steps;
    summary["ranks"] = world_;
    summary["train_loss_bpd"] = result_.last_loss_bpd;
    summary["seconds"] = seconds_since(started_);
    summary["numerics"] = describe(numerics_);
    if (numerics_.probe) summary["precision_probe"] = to_json(numerics_).at("probe");
    summary["agave"] = version::to_json(version::build_info());
    for (const auto& [k, v] : s_.labels) summary["labels"][k] = v;
    io::write_file_atomically(s_.output_dir + "/summary.json", summary.dump(2) + "\n");
  }

  // A run shorter than a few scrape intervals would otherwise vanish before Prometheus sees its
  // final eval and checkpoint; a stop request ends the wait. Every rank waits alike, so the
  // barrier after it does not run into the collective timeout.
  void linger() const {
    if (!s_.monitoring.prometheus || s_.monitoring.linger_seconds <= 0) return;
    const auto until = Clock::now() + std::chrono::duration<double>(s_.monitoring.linger_seconds);
    while (Clock::now() < until && !stop_requested().load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  const TrainerSetup& s_;
  cluster::Communicator& comm_;
  const int rank_, world_;
  const bool lead_;
  const PhaseSchedule schedule_;
  std::string numerics_note_;  // before numerics_, which sets it
  const Numerics numerics_;
  const Clock::time_point started_ = Clock::now();

  std::unique_ptr<monitoring::MetricsLog> log_;
  std::unique_ptr<monitoring::MetricsExporter> exporter_;
  std::unique_ptr<StepReport> report_;
  std::unique_ptr<data::ShardLoader> loader_;
  std::unique_ptr<checkpoint::ShardedCheckpoint> checkpoints_;
  model::Agave model_{nullptr};
  std::unique_ptr<model::Ema> ema_;
  std::unique_ptr<optim::Adamax> optimizer_;
  std::unique_ptr<TrainStep> step_;
  std::unique_ptr<monitoring::ProgressOutput> progress_;  // rank 0: bar, lines or none
  std::unique_ptr<monitoring::ProgressBar> bar_;
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile_;
  int64_t profile_from_ = -1;
  size_t phase_index_ = static_cast<size_t>(-1);
  int64_t nonfinite_in_a_row_ = 0;
  std::string last_checkpoint_;  // the folder the weights in memory were saved to or loaded from
  std::vector<std::string> pictures_;  // rank 0: the newest picture sheets written
  int64_t test_images_ = 0;            // the test split's size
  TrainResult result_;
};

}  // namespace

std::string checkpoint_root(const TrainerSetup& setup) {
  return setup.checkpoint.dir.empty() ? setup.output_dir + "/checkpoints" : setup.checkpoint.dir;
}

Trainer::Trainer(TrainerSetup setup, cluster::Communicator& comm)
    : setup_(std::move(setup)), comm_(comm) {}

TrainResult Trainer::run() { return TrainingRun(setup_, comm_).run(); }

}  // namespace agave::trainer
