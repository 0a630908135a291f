// agave_eval: test-set bits/dim of a checkpoint (the single-sample ELBO and the
// importance-weighted bound with K samples), split across the ranks of an MPI job.
//   mpirun -np N agave_eval --checkpoint DIR [--samples K] [--device cpu|cuda[:N]] [--limit N]
//                           [--batch B] [--no-ema] [--json FILE] [--per-image FILE]
// DIR is a checkpoint folder (with manifest.json), or a folder holding checkpoints (a run's
// checkpoints/ or the run folder itself): then its newest complete checkpoint is used.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "analysis/per_image_file.h"
#include "checkpoint/sharded_checkpoint.h"
#include "checkpoint/training_state.h"
#include "cluster/communicator.h"
#include "cluster/mpi_runtime.h"
#include "data/manifest.h"
#include "io/atomic_file.h"
#include "launcher/config.h"
#include "launcher/config_error.h"
#include "launcher/entry_point.h"
#include "launcher/exit_code.h"
#include "launcher/host_allocator.h"
#include "launcher/torch_threads.h"
#include "model/agave.h"
#include "monitoring/progress_bar.h"
#include "monitoring/progress_output.h"
#include "trainer/evaluator.h"
#include "trainer/seed.h"
#include "version/version.h"

namespace {

using namespace agave;
namespace fs = std::filesystem;

using launcher::code;
using launcher::ExitCode;
using launcher::launcher_rank;

// A problem with the arguments or the checkpoint: one line, exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string fmt(double v, int digits = 4) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// The checkpoint folder DIR names: itself, or the newest complete one under DIR or DIR/checkpoints.
std::string resolve_checkpoint(const std::string& dir) {
  if (!fs::exists(dir)) throw UsageError("--checkpoint " + dir + ": no such folder");
  if (fs::exists(fs::path(dir) / "manifest.json")) return dir;
  for (const auto& root : {fs::path(dir), fs::path(dir) / "checkpoints"}) {
    if (auto latest = checkpoint::ShardedCheckpoint::latest(root.string())) return *latest;
  }
  throw UsageError("--checkpoint " + dir +
                   ": not a complete checkpoint (no manifest.json) and holds none");
}

// --device: "cpu", "cuda" (the GPU of the node-local rank) or "cuda:N". Checked before MPI
// starts, so a machine without CUDA gets one line instead of a LibTorch stack trace.
struct DeviceChoice {
  bool cuda = false;
  int index = -1;  // -1: one GPU per node-local rank
};

DeviceChoice parse_device(const std::string& text) {
  DeviceChoice d;
  if (text == "cpu") return d;
  if (text.rfind("cuda", 0) != 0) {
    throw UsageError("--device " + text + ": expected cpu, cuda or cuda:N");
  }
  d.cuda = true;
  if (text.size() > 4) {
    const std::string index = text.substr(5);
    if (text[4] != ':' || index.empty() ||
        index.find_first_not_of("0123456789") != std::string::npos || index.size() > 4) {
      throw UsageError("--device " + text + ": expected cpu, cuda or cuda:N");
    }
    d.index = std::stoi(index);
  }
  if (!torch::cuda::is_available()) {
#if defined(AGAVE_WITH_CUDA)
    const char* why = "no GPU found";
#else
    const char* why = "this build's LibTorch is a CPU build";
#endif
    throw UsageError("--device " + text + ": CUDA is not available (" + why +
                     "); use --device cpu");
  }
  if (d.index >= static_cast<int>(torch::cuda::device_count())) {
    throw UsageError("--device " + text + ": this node has " +
                     std::to_string(torch::cuda::device_count()) + " GPU(s)");
  }
  return d;
}

torch::Device device_for(const DeviceChoice& d, int local_rank) {
  if (!d.cuda) return torch::kCPU;
  const int index =
      d.index >= 0 ? d.index : local_rank % static_cast<int>(torch::cuda::device_count());
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

struct Plan {
  std::string dir;
  checkpoint::CheckpointMeta meta;
  launcher::Config config;
  trainer::EvalOptions eval;
  std::string shards;
  int64_t test_split = 0;  // images in the test split
  DeviceChoice device;
  bool samples_given = false;  // --samples, not the config's K
};

// Everything that can be wrong before MPI starts: the checkpoint, its config, the data.
Plan make_plan(const std::string& checkpoint, int64_t samples, int64_t limit, int64_t batch,
               bool no_ema, const std::string& shards, const std::string& device) {
  Plan p;
  p.device = parse_device(device);
  p.dir = resolve_checkpoint(checkpoint);
  p.meta = checkpoint::ShardedCheckpoint::read_meta(p.dir);
  if (p.meta.config.empty()) throw UsageError(p.dir + "/manifest.json: holds no config");
  try {
    p.config = launcher::parse_config(YAML::Load(p.meta.config), p.dir + "/manifest.json:config");
  } catch (const YAML::Exception& e) {
    throw UsageError(p.dir + "/manifest.json: its config is not valid YAML: " + e.msg);
  }
  p.eval = p.config.eval;
  // Without --samples (0), K is the config's eval.importance_samples.
  if (samples > 0) p.eval.importance_samples = samples;
  p.samples_given = samples > 0;
  p.eval.subset = limit;
  if (batch > 0) p.eval.batch_size = batch;
  p.eval.use_ema = !no_ema;
  p.shards = shards.empty() ? p.config.data.shards : shards;
  if (!fs::exists(fs::path(p.shards) / "test.manifest.json")) {
    throw UsageError(p.shards + ": no test split here (test.manifest.json); convert the data " +
                     "with agave_data or agave_trainer, or pass --shards DIR");
  }
  p.test_split = data::open_manifest(p.shards, "test").count;
  return p;
}

// What is evaluated, before minutes go into it: the images (the whole test split unless
// --limit), K and where it came from, the weights.
std::string describe_work(const Plan& p) {
  const int64_t images = trainer::evaluated_images(p.eval.subset, p.test_split);
  const std::string which = images < p.test_split
                                ? "the first " + std::to_string(images) + " of the test split's " +
                                      std::to_string(p.test_split) + ", --limit"
                                : "the whole test split; --limit N for fewer";
  return "agave_eval: evaluating " + std::to_string(images) + " test images (" + which +
         ") at K=" + std::to_string(p.eval.importance_samples) + " importance samples (" +
         (p.samples_given ? "--samples" : "the config's eval.importance_samples; --samples K") +
         "), " + (p.eval.use_ema ? "EMA" : "trained") + " weights of step " +
         std::to_string(p.meta.step);
}

// Follows the evaluation on rank 0: a bar or lines as monitoring/progress_output.h decides, and
// after the first batch one line with the time it should take.
class EvalProgressReport {
 public:
  explicit EvalProgressReport(bool lead)
      : output_(lead ? std::make_unique<monitoring::ProgressOutput>(monitoring::ProgressMode::kAuto,
                                                                    true)
                     : nullptr) {}

  void operator()(const trainer::EvalProgressPoint& p) {
    if (!output_) return;
    if (p.done == 0) {  // before the first batch: the time counts from here
      started_ = std::chrono::steady_clock::now();
      if ((bar_ = output_->start("eval", p.total))) bar_->set_unit("img");
      return;
    }
    if (bar_) bar_->update(p.job_done());
    if (!estimated_) say_estimate(p);
  }
  void finish() {
    if (bar_) bar_->finish();
    bar_.reset();
  }

 private:
  void say_estimate(const trainer::EvalProgressPoint& p) {
    estimated_ = true;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    const double rate = static_cast<double>(p.job_done()) / std::max(1e-9, seconds);
    std::cout << (bar_ ? bar_->clear_prefix() : "") + "agave_eval: about " +
                     monitoring::ProgressBar::format_duration(static_cast<double>(p.total) / rate) +
                     " for " + std::to_string(p.total) + " images (" + fmt(rate, 1) +
                     " images/s on the first batch)\n"
              << std::flush;
  }

  std::unique_ptr<monitoring::ProgressOutput> output_;
  std::unique_ptr<monitoring::ProgressBar> bar_;
  std::chrono::steady_clock::time_point started_;
  bool estimated_ = false;
};

// Copies the checkpoint's weights into `model` by name: the EMA shadow (or the trained
// weights with --no-ema) for parameters, the model's own values for buffers.
void load_weights(model::Agave& model, const std::string& dir, bool use_ema) {
  auto state = checkpoint::evaluation_weights(*model, use_ema);
  torch::NoGradGuard no_grad;
  checkpoint::ShardedCheckpoint::load_subset(dir, state);
}

struct Arguments {
  std::string checkpoint, shards, json_out, per_image_out, device = "cpu";
  int64_t samples = 0, limit = 0, batch = 0, threads = 0;
  bool no_ema = false;
};

// Parses the command line; returns an exit code when there is nothing more to do (--help, an
// argument error).
std::optional<int> parse_arguments(int argc, char** argv, Arguments& a) {
  CLI::App app{
      "agave_eval: test-set bits/dim (ELBO and importance-weighted bound) of a "
      "checkpoint, split across the ranks of an MPI job"};
  app.add_option("--checkpoint", a.checkpoint,
                 "checkpoint folder, or a folder holding checkpoints (the newest is used)")
      ->required();
  app.set_version_flag("--version", version::describe("agave_eval"));
  app.add_option("--samples", a.samples,
                 "K, importance samples per test image (default: the config's "
                 "eval.importance_samples)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  app.add_option("--limit", a.limit, "evaluate the first N test images (0 = all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--batch", a.batch,
                 "images per forward pass; the IW bound runs B rows of "
                 "image x sample per pass (default: the config's eval.batch_size)")
      ->check(CLI::PositiveNumber);
  app.add_option("--device", a.device, "cpu, cuda (one GPU per node-local rank) or cuda:N")
      ->capture_default_str();
  app.add_flag("--no-ema", a.no_ema, "use the trained weights instead of the EMA (Polyak) weights");
  app.add_option("--shards", a.shards, "data shards folder (default: the config's data.shards)");
  app.add_option("--threads", a.threads, "LibTorch threads per rank (default: cores / local ranks)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--json", a.json_out, "also write the results to this JSON file (rank 0)");
  app.add_option("--per-image", a.per_image_out,
                 "also write each test image's numbers to this CSV file (rank 0), for "
                 "agave_compare: docs/evaluation.md");
  return launcher::parse_command_line(app, argc, argv);
}

// An output file's folder must exist before minutes of evaluation are spent (a UsageError,
// exit 2). `option`: --json, --per-image.
void check_target(const std::string& option, const std::string& path) {
  if (path.empty()) return;
  const fs::path parent = fs::absolute(path).parent_path();
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) {
    throw UsageError(option + " " + path + ": no such folder " + parent.string());
  }
}

// A regular file (or a new one) is replaced whole (a crash leaves the old one); anything else
// (/dev/stdout, a pipe) is written in place. A write that fails is an error either way.
void write_results(const std::string& option, const std::string& path, const std::string& text) {
  std::error_code ec;
  if (!fs::exists(path, ec) || fs::is_regular_file(path, ec)) {
    io::write_file_atomically(path, text);
    return;
  }
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error(option + " " + path + ": " + std::strerror(errno));
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool flushed = std::fflush(f) == 0;
  const int err = errno;
  const bool closed = std::fclose(f) == 0;
  if (!written || !flushed || !closed) {
    throw std::runtime_error(option + " " + path +
                             ": cannot write the results: " + std::strerror(err != 0 ? err : EIO));
  }
}

// --per-image: each image's numbers under the names of the JSON's means, and what they depend
// on (analysis/per_image_file.h).
analysis::PerImageFile per_image_file(const Plan& plan, const trainer::EvalResult& r) {
  using S = trainer::ImageScores;
  static const std::pair<const char*, double S::*> kColumns[] = {
      {"elbo_bpd", &S::elbo_bpd},
      {"iw_bpd", &S::iw_bpd},
      {"pixel_bpd", &S::pixel_bpd},
      {"pixel_shuffled_bpd", &S::pixel_shuffled_bpd},
      {"latent_use_bpd", &S::latent_use_bpd},
      {"kl_bpd", &S::kl_bpd},
      {"aux_bpd", &S::aux_bpd},
      {"vae_bpd", &S::vae_bpd}};
  analysis::PerImageFile f;
  f.meta = {plan.dir,
            plan.meta.step,
            plan.meta.seed,
            trainer::weights_name(r.weights),
            r.importance_samples,
            plan.test_split};
  for (const auto& [name, member] : kColumns) {
    f.columns.push_back(name);
    f.values.emplace_back();
    for (const auto& image : r.per_image) f.values.back().push_back(image.*member);
  }
  for (const auto& image : r.per_image) f.index.push_back(image.index);
  return f;
}

// "0.0123 0.0045" (bottom layer first), "none" without latents.
std::string kl_per_layer(const trainer::EvalResult& r) {
  std::string out;
  for (double kl : r.kl_bpd_layers) out += (out.empty() ? "" : " ") + fmt(kl);
  return out.empty() ? "none" : out;
}

void print_results(const Plan& plan, const trainer::EvalResult& r, double seconds, int ranks,
                   const Arguments& a) {
  const int64_t k = r.importance_samples;
  std::cout << "test ELBO          " << fmt(r.elbo_bpd) << " ± " << fmt(r.elbo_bpd_stderr)
            << " bits/dim (KL " << fmt(r.kl_bpd) << ")\n"
            << "test IW bound K=" << std::left << std::setw(4) << k << fmt(r.iw_bpd) << " ± "
            << fmt(r.iw_bpd_stderr) << " bits/dim\n"
            << "test VAE bound     " << fmt(r.vae_bpd) << " bits/dim (aux " << fmt(r.aux_bpd)
            << ", " << trainer::weights_name(r.weights) << " weights)\n"
            << "test pixel term    " << fmt(r.pixel_bpd) << " bits/dim with matched z, "
            << fmt(r.pixel_shuffled_bpd) << " with shuffled z\n"
            << "test latent use    " << fmt(r.latent_use_bpd) << " ± "
            << fmt(r.latent_use_bpd_stderr) << " bits/dim (" << r.latent_use_images
            << " images paired), " << r.active_latent_channels << " of " << r.latent_channels
            << " latent channels active, KL per layer " << kl_per_layer(r) << "\n"
            << r.images << " images in " << fmt(seconds, 2) << " s: " << fmt(r.images / seconds, 2)
            << " images/s, " << fmt(static_cast<double>(r.images * k) / seconds, 1)
            << " image·samples/s (IW)" << std::endl;
  if (!a.per_image_out.empty()) {
    write_results("--per-image", a.per_image_out, analysis::to_text(per_image_file(plan, r)));
  }
  if (a.json_out.empty()) return;
  nlohmann::json j = trainer::to_json(r);
  j["checkpoint"] = plan.dir;
  j["step"] = plan.meta.step;
  j["ema"] = plan.eval.use_ema;
  j["ranks"] = ranks;
  j["seconds"] = seconds;
  write_results("--json", a.json_out, j.dump(2) + "\n");
}

int run(int argc, char** argv) {
  Arguments a;
  if (const auto code = parse_arguments(argc, argv, a)) return *code;
  Plan plan;
  try {
    plan = make_plan(a.checkpoint, a.samples, a.limit, a.batch, a.no_ema, a.shards, a.device);
    check_target("--json", a.json_out);
    check_target("--per-image", a.per_image_out);
  } catch (const std::exception& e) {  // UsageError, CheckpointError, ConfigError
    if (launcher_rank() == 0) std::cerr << "agave_eval: error: " << e.what() << std::endl;
    return code(ExitCode::kUserError);
  }

  cluster::MpiRuntime mpi(&argc, &argv, plan.config.cluster.timeout_seconds);
  const auto& where = mpi.placement();
  const bool lead = where.world_rank == 0;
  launcher::reuse_freed_tensor_memory();
  launcher::configure_torch_threads(
      a.threads > 0 ? a.threads : plan.config.cluster.threads_per_rank, where.local_size);
  auto comm = cluster::make_mpi_communicator(MPI_COMM_WORLD, plan.config.cluster.timeout_seconds);

  torch::manual_seed(plan.meta.seed);
  model::Agave model(plan.config.model);
  try {
    load_weights(model, plan.dir, plan.eval.use_ema);
  } catch (const checkpoint::CheckpointError& e) {
    // Every rank read the same files and failed alike: one line, exit 2.
    if (lead) std::cerr << "agave_eval: error: " << e.what() << std::endl;
    comm.reset();
    return code(ExitCode::kUserError);
  }
  const torch::Device device = device_for(plan.device, where.local_rank);
  model->to(device);
  // z ~ q differs per rank, as in training; the test images are disjoint per rank anyway.
  torch::manual_seed(trainer::rank_seed(plan.meta.seed, where.world_rank));
  if (lead) {
    std::cout << "agave_eval: " << plan.dir << " (step " << plan.meta.step << ", "
              << (plan.eval.use_ema ? "EMA" : "trained") << " weights), test split of "
              << plan.shards << ", K=" << plan.eval.importance_samples << ", " << device.str()
              << ", batch " << plan.eval.batch_size << ", " << where.world_size << " rank(s), "
              << torch::get_num_threads() << " thread(s) each\n"
              << describe_work(plan) << std::endl;
  }
  EvalProgressReport progress(lead);
  auto r = trainer::evaluate(model, plan.shards, plan.eval, *comm, plan.meta.seed, device,
                             trainer::EvalControl{std::ref(progress), nullptr,
                                                  /*per_image=*/!a.per_image_out.empty()});
  r.weights = plan.eval.use_ema ? trainer::EvalWeights::kEma : trainer::EvalWeights::kLive;
  progress.finish();
  if (lead) print_results(plan, r, r.seconds, where.world_size, a);
  comm.reset();
  mpi.world().barrier();
  return code(r.images > 0 ? ExitCode::kOk : ExitCode::kFailed);
}

}  // namespace

int main(int argc, char** argv) {
  return agave::launcher::guarded_main("agave_eval", [&] { return run(argc, argv); });
}
