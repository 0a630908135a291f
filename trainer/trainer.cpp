#include "trainer/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <thread>

#include "cluster/gradient_bucketer.h"
#include "data/loader.h"
#include "model/agave.h"
#include "model/ema.h"
#include "model/example_random.h"
#include "model/fast_sampler.h"
#include "monitoring/metrics_exporter.h"
#include "monitoring/metrics_log.h"
#include "monitoring/png_image.h"
#include "monitoring/progress_bar.h"
#include "trainer/adamax.h"
#include "trainer/autocast.h"
#include "trainer/image_grid.h"
#include "trainer/phase.h"
#include "trainer/precision.h"
#include "trainer/sharded_checkpoint.h"

namespace agave::trainer {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Trainable parameters of a phase, in registration order (the same on every rank).
std::vector<torch::Tensor> set_trainable(model::Agave& model, const PhaseSpec& spec) {
  const auto groups = model->parameter_groups();
  std::vector<torch::Tensor> out;
  for (auto p : groups.vae) p.set_requires_grad(spec.train_vae);
  for (auto p : groups.pixelcnn) p.set_requires_grad(spec.train_pixelcnn);
  for (auto& p : model->parameters()) {
    p.mutable_grad() = torch::Tensor();
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

// Global L2 norm of the gradients (identical on every rank after the all-reduce), as a device
// scalar: the host reads it together with the step's other numbers.
torch::Tensor grad_norm(const std::vector<torch::Tensor>& params, const torch::Tensor& zero) {
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().norm());
  if (norms.empty()) return zero;
  return torch::stack(norms).norm().to(torch::kFloat64);
}

std::string fmt(double v, int digits = 3) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// Fault injection for the tests of failure handling (a rank whose loss turns non-finite, a
// rank that dies or fails alone, a stop request): AGAVE_FAULT="<kind>:<step>:<rank>",
// kind = nan | exit | throw | stop. Unset in real runs.
struct Fault {
  std::string kind;
  int64_t step = -1;
  int rank = -1;
};

Fault fault_from_env() {
  Fault f;
  const char* v = std::getenv("AGAVE_FAULT");
  if (!v) return f;
  std::string s(v);
  const auto a = s.find(':'), b = s.rfind(':');
  if (a == std::string::npos || a == b) return f;
  f.kind = s.substr(0, a);
  f.step = std::stoll(s.substr(a + 1, b - a - 1));
  f.rank = std::stoi(s.substr(b + 1));
  return f;
}

// Sum of every parameter in double precision: equal on all ranks while replicas agree.
double parameter_checksum(torch::nn::Module& m) {
  std::vector<torch::Tensor> sums;
  for (const auto& p : m.parameters()) sums.push_back(p.detach().to(torch::kFloat64).sum());
  return torch::stack(sums).sum().item<double>();  // one host sync, not one per tensor
}

// The tensors of a checkpoint by name: model parameters and buffers, EMA shadow, and the
// optimizer's moments and step counts (step counts travel as int64 scalars).
struct TrainingState {
  std::map<std::string, torch::Tensor> tensors;
  std::vector<std::pair<std::string, AdamaxState*>> steps;

  TrainingState(model::Agave& model, model::Ema& ema, Adamax& optimizer) {
    for (auto& kv : model->named_parameters()) tensors["model/" + kv.key()] = kv.value();
    for (auto& kv : model->named_buffers()) tensors["model/" + kv.key()] = kv.value();
    for (auto& kv : ema.shadow()) tensors["ema/" + kv.key()] = kv.value();
    const auto params = model->named_parameters();
    auto& states = optimizer.states();
    for (size_t i = 0; i < params.size(); ++i) {
      auto& st = states[i];
      const auto& p = params[i].value();
      // Never-stepped parameters get explicit zero moments: Adamax's own lazy start.
      if (!st.exp_avg.defined()) {
        st.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
        st.exp_inf = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      }
      const std::string base = "optim/" + params[i].key();
      tensors[base + "/exp_avg"] = st.exp_avg;
      tensors[base + "/exp_inf"] = st.exp_inf;
      tensors[base + "/step"] = torch::tensor(st.step, torch::kInt64);
      steps.emplace_back(base + "/step", &st);
    }
  }
  // After a load: the step counts back into the optimizer.
  void apply_steps() {
    for (auto& [name, st] : steps) st->step = tensors.at(name).item<int64_t>();
  }
};

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

uint64_t rank_seed(uint64_t seed, int rank, int64_t step) {
  return seed * 1000003ULL + static_cast<uint64_t>(step) * 7919ULL + static_cast<uint64_t>(rank) +
         1;
}

}  // namespace

std::map<std::string, std::string> model_signature(const model::AgaveOptions& o,
                                                   const data::DataOptions& data) {
  const auto& v = o.vae();
  const auto& p = o.pixelcnn();
  auto str = [](auto x) {
    std::ostringstream s;
    s << x;
    return s.str();
  };
  return {{"data.dataset", data::dataset_name(data.dataset)},
          {"model.vae.depth", str(v.depth())},
          {"model.vae.width", str(v.width())},
          {"model.vae.latent_channels", str(v.latent_channels())},
          {"model.vae.latent_resolution", str(v.latent_resolution())},
          {"model.vae.iaf_steps", str(v.iaf_steps())},
          {"model.pixelcnn.nr_resnet", str(p.nr_resnet())},
          {"model.pixelcnn.nr_filters", str(p.nr_filters())},
          {"model.pixelcnn.nr_logistic_mix", str(p.nr_logistic_mix())},
          {"aux.resolution", str(o.aux().resolution())},
          {"aux.color_bins", str(o.aux().color_bins())}};
}

std::atomic<bool>& Trainer::stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

Trainer::Trainer(TrainerSetup setup, cluster::Communicator& comm)
    : setup_(std::move(setup)), comm_(comm) {}

TrainResult Trainer::run() {
  const int rank = comm_.rank();
  const int world = comm_.size();
  const bool lead = rank == 0;
  const auto& t = setup_.train;
  namespace fs = std::filesystem;

  std::unique_ptr<monitoring::MetricsLog> log;
  if (lead) {
    fs::create_directories(setup_.output_dir);
    std::ofstream(setup_.output_dir + "/config.yaml") << setup_.resolved_config;
    if (setup_.monitoring.jsonl) {
      log = std::make_unique<monitoring::MetricsLog>(setup_.output_dir + "/metrics.jsonl");
    }
  }

  // Prometheus metrics from the run's rank 0 (or every rank, to compare their step times).
  std::unique_ptr<monitoring::MetricsExporter> exporter;
  if (setup_.monitoring.prometheus && (lead || setup_.monitoring.every_rank)) {
    monitoring::RunLabels labels;
    labels.run = setup_.run_name;
    std::ostringstream lambda;
    lambda << setup_.loss.lambda;
    labels.lambda = lambda.str();
    labels.aux_resolution = std::to_string(setup_.model.aux().resolution());
    labels.color_bins = std::to_string(setup_.model.aux().color_bins());
    labels.rank = setup_.world_rank;
    exporter = std::make_unique<monitoring::MetricsExporter>(setup_.monitoring, labels);
    if (lead)
      std::cout << "[" << setup_.run_name << "] metrics at " << exporter->url() << std::endl;
  }

  // Identical initial weights everywhere: the same seed, then rank 0's broadcast (which also
  // covers data-dependent init on the first global batch).
  torch::manual_seed(setup_.seed);
  model::Agave model(setup_.model);
  const torch::Device device = setup_.device;
  model->to(device);

  data::LoaderOptions lo;
  lo.batch_size = t.batch_size / world;
  lo.rank = rank;
  lo.world = world;
  lo.seed = setup_.seed;
  lo.prefetch = setup_.data.prefetch_batches;
  lo.shuffle = setup_.data.shuffle;
  lo.verify_checksums = setup_.data.verify_checksums;
  lo.drop_last = true;  // lock-step ranks need equal batch counts
  data::ShardLoader loader(setup_.data.shards, "train", lo);
  if (loader.batches_per_epoch() < 1) {
    throw std::runtime_error(setup_.data.shards +
                             ": the train split has too few images for a "
                             "batch of " +
                             std::to_string(lo.batch_size) + " per rank");
  }

  // Where this run stands: a fresh start, or the newest complete checkpoint.
  const std::string ckpt_root =
      setup_.checkpoint.dir.empty() ? setup_.output_dir + "/checkpoints" : setup_.checkpoint.dir;
  ShardedCheckpoint checkpoints(ckpt_root, setup_.checkpoint.keep, comm_);
  std::optional<std::string> resume_dir;
  if (setup_.resume == "auto") {
    resume_dir = ShardedCheckpoint::latest(ckpt_root);
  } else if (setup_.resume != "never") {
    resume_dir = fs::exists(fs::path(setup_.resume) / "manifest.json")
                     ? std::optional<std::string>(setup_.resume)
                     : ShardedCheckpoint::latest(setup_.resume);
    if (!resume_dir) throw CheckpointError(setup_.resume + ": no complete checkpoint there");
  } else if (ShardedCheckpoint::latest(ckpt_root)) {
    throw CheckpointError(ckpt_root + " already holds checkpoints of run " + setup_.run_name +
                          "; resume them (--resume auto) or choose another run.output_dir");
  }
  std::optional<CheckpointMeta> meta;
  if (resume_dir) {
    meta = ShardedCheckpoint::read_meta(*resume_dir);
    const auto want = model_signature(setup_.model, setup_.data);
    for (const auto& [key, value] : want) {
      const auto it = meta->model_signature.find(key);
      const std::string had = it == meta->model_signature.end() ? "(none)" : it->second;
      if (had != value) {
        throw CheckpointError(*resume_dir + " was written with " + key + " = " + had +
                              " but the config has " + value +
                              "; resume with the original config or start a new run");
      }
    }
  }

  if (!meta && lead) {
    // Data-dependent init on the first global batch (what one rank holding the whole batch
    // reads), so the initial weights are the same for any number of ranks.
    data::LoaderOptions first_lo = lo;
    first_lo.world = 1;
    first_lo.rank = 0;
    first_lo.batch_size = lo.batch_size * world;
    first_lo.prefetch = 1;
    data::ShardLoader first_loader(setup_.data.shards, "train", first_lo);
    const auto first = first_loader.next();
    torch::NoGradGuard no_grad;
    model::ExampleRandomScope rng(model::example_keys(setup_.seed, -1, first->indices).to(device));
    model->data_init(first->images.to(device));
  }
  cluster::broadcast_module_state(*model, comm_);
  if (use_bf16(t.precision, device)) to_channels_last(*model);
  model::Ema ema(*model, t.ema_decay);
  // The model's draws in training steps (z ~ q, dropout) come from per-example streams
  // (ExampleRandomScope below); anything else random differs per rank from here on.
  torch::manual_seed(rank_seed(setup_.seed, rank, 0));

  Adamax optimizer(model->parameters(), AdamaxOptions(t.optimizer.lr)
                                            .beta1(t.optimizer.beta1)
                                            .beta2(t.optimizer.beta2)
                                            .eps(t.optimizer.eps));
  TrainingState state(model, ema, optimizer);
  int64_t start_step = 0;
  if (meta) {
    std::map<std::string, torch::Tensor> rng = {{"rng/cpu", torch::Tensor()}};
    const bool same_ranks = checkpoints.load(*resume_dir, state.tensors, &rng);
    state.apply_steps();
    start_step = meta->step;
    // Same ranks: each continues its own random stream, so the run is bit-identical to one
    // never stopped. Other ranks: fresh per-rank streams from (seed, step, rank).
    if (same_ranks) {
      set_cpu_rng_state(rng.at("rng/cpu"));
    } else {
      torch::manual_seed(rank_seed(setup_.seed, rank, start_step));
    }
    // The epoch order is the same for any world size; a changed global batch (train.batch_size)
    // maps the position to the batch holding the first image not yet trained on.
    data::LoaderPosition pos{meta->loader_epoch, meta->loader_index};
    if (meta->loader_global_batch > 0 && meta->loader_global_batch != loader.global_batch_size()) {
      pos = data::ShardLoader::map_position(pos, meta->loader_global_batch,
                                            loader.global_batch_size());
      if (lead) {
        std::cout << "[" << setup_.run_name << "] global batch " << meta->loader_global_batch
                  << " -> " << loader.global_batch_size() << ": data position epoch "
                  << meta->loader_epoch << " batch " << meta->loader_index << " -> batch "
                  << pos.index << std::endl;
      }
    }
    loader.restore({pos.epoch, std::min(pos.index, loader.batches_per_epoch())});
    if (lead) {
      std::cout << "[" << setup_.run_name << "] resumed from " << *resume_dir << " at step "
                << start_step << " (written by " << meta->world_size << " rank(s), now " << world
                << ")" << std::endl;
    }
  }
  const PhaseSchedule schedule(t.phases);
  TrainResult result;
  const bool bf16 = use_bf16(t.precision, device);

  const Fault fault = fault_from_env();
  std::unique_ptr<cluster::GradientBucketer> bucketer;
  std::vector<torch::Tensor> trainable;
  PhaseSpec spec;
  size_t phase_index = static_cast<size_t>(-1);
  int64_t nonfinite_in_a_row = 0;
  std::optional<data::Batch> pending;
  result.resumed_from = resume_dir.value_or("");
  result.steps = start_step;  // steps of the whole run, also across resumes
  if (start_step >= schedule.total_steps()) {
    if (lead) {
      std::cout << "[" << setup_.run_name << "] already complete at step " << start_step
                << "; nothing to train" << std::endl;
    }
    result.already_complete = true;
    result.steps = start_step;
    return result;
  }
  double last_wait = loader.wait_seconds();

  // Sums over the current log window.
  struct Window {
    double pixel = 0, aux = 0, kl = 0, loss = 0, images = 0;
    double step_s = 0, compute_s = 0, comm_s = 0, data_s = 0;
    int64_t steps = 0;
  } w;
  const double to_bpd = 1.0 / (model->dims_per_image() * std::log(2.0));
  const auto run_start = Clock::now();

  auto run_eval = [&](int64_t step) {
    if (setup_.eval.use_ema) ema.swap(*model);
    const auto r = evaluate(model, setup_.data.shards, setup_.eval, comm_, setup_.seed, device);
    if (setup_.eval.use_ema) ema.swap(*model);
    if (exporter) {
      exporter->record_eval({step, r.elbo_bpd, r.iw_bpd, r.kl_bpd, r.importance_samples});
    }
    if (lead) {
      std::cout << "[" << setup_.run_name << "] eval step " << step << ": test ELBO "
                << fmt(r.elbo_bpd) << " ± " << fmt(r.elbo_bpd_stderr)
                << " bits/dim, IW(K=" << r.importance_samples << ") " << fmt(r.iw_bpd) << " ± "
                << fmt(r.iw_bpd_stderr) << ", KL " << fmt(r.kl_bpd) << " (" << r.images
                << " images)" << std::endl;
      if (log) {
        log->write({{"event", "eval"},
                    {"run", setup_.run_name},
                    {"step", step},
                    {"elbo_bpd", r.elbo_bpd},
                    {"elbo_bpd_stderr", r.elbo_bpd_stderr},
                    {"iw_bpd", r.iw_bpd},
                    {"iw_bpd_stderr", r.iw_bpd_stderr},
                    {"kl_bpd", r.kl_bpd},
                    {"images", r.images},
                    {"importance_samples", r.importance_samples}});
      }
    }
    return r;
  };

  auto save_checkpoint = [&](int64_t steps_done) {
    CheckpointMeta m;
    m.step = steps_done;
    m.phase = phase_name(schedule.at(std::max<int64_t>(0, steps_done - 1)).kind);
    m.world_size = world;
    const auto pos = loader.position();
    m.loader_epoch = pos.epoch;
    m.loader_index = pos.index;
    m.loader_global_batch = loader.global_batch_size();
    m.seed = setup_.seed;
    m.model_signature = model_signature(setup_.model, setup_.data);
    m.config = setup_.resolved_config;
    TrainingState current(model, ema, optimizer);
    const auto saved = checkpoints.save(m, current.tensors, {{"rng/cpu", cpu_rng_state()}});
    if (exporter) exporter->record_checkpoint(saved.seconds, static_cast<double>(saved.bytes));
    if (lead) {
      std::cout << "[" << setup_.run_name << "] checkpoint " << saved.dir << " ("
                << fmt(saved.bytes / 1e6, 1) << " MB in " << fmt(saved.seconds, 2) << " s)"
                << std::endl;
      if (log) {
        log->write({{"event", "checkpoint"},
                    {"step", steps_done},
                    {"dir", saved.dir},
                    {"bytes", saved.bytes},
                    {"seconds", saved.seconds}});
      }
    }
  };

  // A bar with ETA on a terminal; logs and CI get the plain step lines only.
  std::unique_ptr<monitoring::ProgressBar> bar;
  const auto& progress = setup_.monitoring.progress;
  if (lead && (progress == "bar" ||
               (progress == "auto" && ::isatty(STDERR_FILENO) && std::getenv("CI") == nullptr))) {
    bar = std::make_unique<monitoring::ProgressBar>("train " + setup_.run_name,
                                                    schedule.total_steps(), stderr,
                                                    monitoring::ProgressBar::Mode::kBar);
    bar->update(start_step);
  }

  if (setup_.eval.at_start && start_step == 0) run_eval(0);

  // A chrome://tracing profile of a few steady-state steps (after two warm-up steps) on rank 0.
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  const int64_t profile_from = start_step + 2;
  const int64_t profile_to = profile_from + setup_.monitoring.profile_steps;
  const std::string profile_file = setup_.output_dir + "/profile-rank0.json";

  int64_t step = start_step;
  for (; step < schedule.total_steps(); ++step) {
    if (lead && step == profile_from && profile_to > profile_from) {
      profile = std::make_unique<torch::autograd::profiler::RecordProfile>(profile_file);
    }
    const size_t pi = schedule.index_at(step);
    if (pi != phase_index) {
      phase_index = pi;
      spec = phase_spec(schedule.at(step).kind);
      bucketer.reset();
      trainable = set_trainable(model, spec);
      if (exporter) exporter->set_phase(phase_name(spec.kind));
      bucketer = std::make_unique<cluster::GradientBucketer>(
          trainable, comm_,
          cluster::BucketerOptions{
              setup_.cluster.bucket_mb, std::min(1.0, setup_.cluster.bucket_mb),
              setup_.cluster.overlap == "true" ||
                  (setup_.cluster.overlap == "auto" && comm_.backend() == "nccl")});
      if (lead) {
        std::cout << "[" << setup_.run_name << "] phase " << phase_name(spec.kind) << ": steps "
                  << schedule.phase_start(pi) << "-"
                  << schedule.phase_start(pi) + schedule.at(step).steps - 1 << ", "
                  << trainable.size() << " parameter tensors train" << std::endl;
      }
    }
    const auto step_start = Clock::now();
    if (!pending) pending = loader.next();
    if (!pending) pending = loader.next();  // the epoch ended: start the next one
    const double wait_now = loader.wait_seconds();
    const double data_s = wait_now - last_wait;
    last_wait = wait_now;
    // Pinned host batches copy without blocking the host (CUDA); a no-op on CPU.
    const auto x = pending->images.to(device, /*non_blocking=*/true);
    const auto keys = model::example_keys(setup_.seed, step, pending->indices).to(device, true);
    pending.reset();

    const auto compute_start = Clock::now();
    bucketer->prepare();
    model::LossTerms terms;
    {
      AutocastGuard autocast(bf16, x.is_cuda());
      model::ExampleRandomScope rng(keys);
      // Free bits look at the global batch's KL per channel (see VaeImpl::set_batch_sum).
      if (world > 1 && setup_.model.vae().free_bits() > 0) {
        model->vae->set_batch_sum([this](torch::Tensor t) {
          comm_.all_reduce(t);
          return t;
        });
      }
      terms = model->forward(x, spec.terms);
      model->vae->set_batch_sum(nullptr);
    }
    auto loss = model::AgaveImpl::loss(terms, setup_.loss.lambda, spec.terms);
    if (fault.step == step && fault.rank == rank) {
      if (fault.kind == "exit") {
        std::cerr << "rank " << rank << ": AGAVE_FAULT: exiting at step " << step << std::endl;
        std::_Exit(9);
      }
      if (fault.kind == "throw") {
        throw std::runtime_error("AGAVE_FAULT: an error on this rank alone at step " +
                                 std::to_string(step));
      }
      if (fault.kind == "nan") loss = loss * std::numeric_limits<float>::quiet_NaN();
      if (fault.kind == "stop") stop_requested() = true;
    }
    loss.backward();
    const double comm_s = bucketer->finish();
    const double compute_s = seconds_since(compute_start) - comm_s;

    // Gradients are already averaged (equal on every rank); the loss is still per rank. One
    // all-reduce carries every decision and the metrics of this step.
    // Everything the host needs from this step leaves the device in one copy (one sync on a
    // GPU instead of one per number).
    const auto zero =
        torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
    auto sum_of = [&](const torch::Tensor& v) {
      return v.defined() ? v.detach().sum().to(torch::kFloat64) : zero;
    };
    const auto host =
        torch::stack({loss.detach().to(torch::kFloat64), grad_norm(trainable, zero),
                      sum_of(terms.pixel_nll), sum_of(terms.aux_nll), sum_of(terms.kl)})
            .cpu();
    const double* h = host.data_ptr<double>();
    const double loss_v = h[0], norm = h[1];
    const double n = static_cast<double>(x.size(0));
    const auto agreed = comm_.all_reduce_sum(
        {std::isfinite(loss_v) ? 0.0 : 1.0, std::isfinite(norm) ? 0.0 : 1.0,
         stop_requested().load() ? 1.0 : 0.0, h[2], h[3], h[4], loss_v * n, n});
    const bool stop = agreed[2] > 0;
    if (agreed[0] > 0 || agreed[1] > 0) {
      // Skip on every rank alike; the gradients are dropped, weights and EMA untouched.
      ++result.skipped_steps;
      const std::string what =
          agreed[0] > 0
              ? "non-finite loss on " + std::to_string(static_cast<int>(agreed[0])) + " rank(s)"
              : std::string("non-finite gradient");
      if (++nonfinite_in_a_row >= t.max_nonfinite_steps) {
        throw NonFiniteError("run " + setup_.run_name + ": " + std::to_string(nonfinite_in_a_row) +
                             " steps in a row had a non-finite loss or gradient (last at step " +
                             std::to_string(step) + ": " + what +
                             "); lower train.optimizer.lr or set train.grad_clip");
      }
      if (lead) {
        std::cerr << "[" << setup_.run_name << "] step " << step << ": " << what << ", skipped"
                  << std::endl;
        if (log) log->write({{"event", "skip"}, {"step", step}, {"reason", what}});
      }
    } else {
      nonfinite_in_a_row = 0;
      if (t.grad_clip > 0 && norm > t.grad_clip) {
        torch::NoGradGuard no_grad;
        for (auto& p : trainable) p.grad().mul_(t.grad_clip / norm);
      }
      optimizer.step();
      ema.update();
      ++result.steps;
      w.pixel += agreed[3];
      w.aux += agreed[4];
      w.kl += agreed[5];
      w.loss += agreed[6];
      w.images += agreed[7];
    }
    w.step_s += seconds_since(step_start);
    w.compute_s += compute_s;
    w.comm_s += comm_s;
    w.data_s += data_s;
    ++w.steps;

    const bool last = step + 1 == schedule.total_steps();
    // A window never mixes phases: their terms differ.
    const bool phase_ends = last || schedule.index_at(step + 1) != phase_index;
    if ((step + 1) % setup_.monitoring.log_every == 0 || phase_ends) {
      const double imgs = std::max(1.0, w.images);
      const double loss_bpd = w.loss / imgs * to_bpd;
      result.last_loss_bpd = loss_bpd;
      const double ips = w.images / std::max(1e-9, w.step_s);
      if (exporter) {
        monitoring::StepRecord rec;
        rec.step = step + 1;
        rec.phase = phase_name(spec.kind);
        rec.loss_bpd = loss_bpd;
        rec.pixel_bpd = w.pixel / imgs * to_bpd;
        rec.aux_bpd = w.aux / imgs * to_bpd;
        rec.kl_bpd = w.kl / imgs * to_bpd;
        rec.kl_nats = w.kl / imgs;
        rec.images_per_second = ips;
        rec.step_seconds = w.step_s / w.steps;
        rec.compute_seconds = w.compute_s / w.steps;
        rec.allreduce_seconds = w.comm_s / w.steps;
        rec.data_wait_seconds = w.data_s / w.steps;
        rec.steps_done = step + 1 - result.skipped_steps;
        rec.skipped_steps_total = result.skipped_steps;
        rec.window_steps = w.steps;
        exporter->record_step(rec);
      }
      if (lead) {
        std::cout << "[" << setup_.run_name << "] step " << step + 1 << "/"
                  << schedule.total_steps() << " " << phase_name(spec.kind) << "  loss "
                  << fmt(loss_bpd) << "  pixel " << fmt(w.pixel / imgs * to_bpd) << "  aux "
                  << fmt(w.aux / imgs * to_bpd) << "  kl " << fmt(w.kl / imgs * to_bpd)
                  << " bits/dim  " << fmt(ips, 1) << " img/s  comm "
                  << fmt(100 * w.comm_s / std::max(1e-9, w.step_s), 1) << "%  data "
                  << fmt(100 * w.data_s / std::max(1e-9, w.step_s), 1) << "%" << std::endl;
        if (log) {
          log->write({{"event", "train"},
                      {"run", setup_.run_name},
                      {"step", step + 1},
                      {"phase", phase_name(spec.kind)},
                      {"loss_bpd", loss_bpd},
                      {"pixel_bpd", w.pixel / imgs * to_bpd},
                      {"aux_bpd", w.aux / imgs * to_bpd},
                      {"kl_bpd", w.kl / imgs * to_bpd},
                      {"kl_nats", w.kl / imgs},
                      {"images_per_second", ips},
                      {"step_seconds", w.step_s / w.steps},
                      {"compute_seconds", w.compute_s / w.steps},
                      {"allreduce_seconds", w.comm_s / w.steps},
                      {"data_wait_seconds", w.data_s / w.steps},
                      {"skipped_steps_total", result.skipped_steps},
                      {"ranks", world}});
        }
      }
      w = Window{};
    }
    if (setup_.eval.every > 0 && (step + 1) % setup_.eval.every == 0 && !last) run_eval(step + 1);
    const int64_t done = step + 1;
    if (profile && done == profile_to) {
      profile.reset();  // writes the file
      std::cout << "[" << setup_.run_name << "] profile of steps " << profile_from + 1 << "-"
                << profile_to << ": " << profile_file << std::endl;
    }
    if (bar) bar->update(done);
    if (stop) {
      if (lead) {
        std::cout << "[" << setup_.run_name << "] stop requested: checkpointing at step " << done
                  << std::endl;
      }
      save_checkpoint(done);
      result.stopped = true;
      return result;
    }
    if (last || (setup_.checkpoint.every > 0 && done % setup_.checkpoint.every == 0)) {
      save_checkpoint(done);
    }
  }

  bar.reset();
  // Replicas must still agree: a silent divergence would make every later number meaningless.
  const auto sums = comm_.all_gather(parameter_checksum(*model));
  for (size_t r = 1; r < sums.size(); ++r) {
    if (sums[r] != sums[0]) {
      throw std::runtime_error("run " + setup_.run_name + ": rank " + std::to_string(r) +
                               "'s parameters differ from rank 0's after training");
    }
  }
  if (lead) {
    std::cout << "[" << setup_.run_name << "] " << world << " replica(s) in sync after "
              << result.steps << " step(s), " << result.skipped_steps << " skipped" << std::endl;
  }
  result.eval = run_eval(step);
  if (lead && setup_.eval.sample_images > 0) {
    // Pictures like the paper's: f(z) above the PixelCNN samples conditioned on it, and
    // reconstructions (x, f(z) of z ~ q(z|x), a PixelCNN sample given that f(z)).
    if (setup_.eval.use_ema) ema.swap(*model);
    {
      model::ScopedEval eval_mode(*model);
      torch::NoGradGuard no_grad;
      // One sampling pass for both sheets (the prior samples and the reconstructions share a
      // batch), with the cached sampler: each raster step computes only what its pixel changes.
      const int64_t n = setup_.eval.sample_images;
      data::LoaderOptions tl;
      tl.batch_size = n;
      tl.shuffle = false;
      tl.drop_last = false;
      data::ShardLoader test(setup_.data.shards, "test", tl);
      const auto xb = test.next()->images.to(device);
      const auto fz = torch::cat({model->vae->sample_prior(n).fz, model->vae->forward(xb).fz});
      const auto xs = model::sample_pixels_cached(model, fz);
      const auto fz_u8 = model::VaeImpl::y_mean(fz).round().clamp(0, 255).to(torch::kUInt8).cpu();
      monitoring::write_png(setup_.output_dir + "/samples.png",
                            image_grid({fz_u8.narrow(0, 0, n), xs.narrow(0, 0, n).cpu()}));
      monitoring::write_png(
          setup_.output_dir + "/reconstructions.png",
          image_grid({xb.cpu(), fz_u8.narrow(0, n, n), xs.narrow(0, n, n).cpu()}));
    }
    if (setup_.eval.use_ema) ema.swap(*model);
  }
  if (lead) {
    nlohmann::json summary = {{"run", setup_.run_name},
                              {"steps", result.steps},
                              {"skipped_steps", result.skipped_steps},
                              {"ranks", world},
                              {"train_loss_bpd", result.last_loss_bpd},
                              {"test_elbo_bpd", result.eval.elbo_bpd},
                              {"test_elbo_bpd_stderr", result.eval.elbo_bpd_stderr},
                              {"test_iw_bpd", result.eval.iw_bpd},
                              {"test_iw_bpd_stderr", result.eval.iw_bpd_stderr},
                              {"test_kl_bpd", result.eval.kl_bpd},
                              {"importance_samples", result.eval.importance_samples},
                              {"seconds", seconds_since(run_start)}};
    for (const auto& [k, v] : setup_.labels) summary["labels"][k] = v;
    std::ofstream(setup_.output_dir + "/summary.json") << summary.dump(2) << "\n";
  }
  if (setup_.monitoring.prometheus && setup_.monitoring.linger_seconds > 0) {
    // A run shorter than a few scrape intervals would otherwise vanish before Prometheus sees
    // its final eval and checkpoint; a stop request ends the wait. Every rank waits alike, so
    // the barrier below does not run into the collective timeout.
    const auto until =
        Clock::now() + std::chrono::duration<double>(setup_.monitoring.linger_seconds);
    while (Clock::now() < until && !stop_requested().load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  comm_.barrier();
  return result;
}

}  // namespace agave::trainer
