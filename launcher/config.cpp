#include "launcher/config.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "data/bounds.h"
#include "launcher/sweep_plan.h"
#include "launcher/yaml_reader.h"
#include "monitoring/paper_axes.h"
#include "trainer/parallel_pretraining.h"

namespace agave::launcher {
namespace {

// ---- reading -------------------------------------------------------------------------------

void require(bool ok, YamlReader& r, const char* key, const std::string& message) {
  if (!ok) r.fail(key, message);
}

// The allowed (name, value) pairs of a closed set, from the name function beside its enum, so
// each name is spelled once.
template <class E>
std::vector<std::pair<std::string, E>> named(std::initializer_list<E> values,
                                             const char* (*name)(E)) {
  std::vector<std::pair<std::string, E>> out;
  for (E v : values) out.emplace_back(name(v), v);
  return out;
}

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

void read_run(YamlReader r, RunOptions& o) {
  r.read("name", o.name);
  r.read("output_dir", o.output_dir);
  r.read("seed", o.seed);
  require(!o.name.empty() && o.name.find('/') == std::string::npos, r, "name",
          "must be a non-empty name without '/', got '" + o.name + "'");
  require(!o.output_dir.empty(), r, "output_dir", "must not be empty");
  require(o.seed >= 0, r, "seed", "must be >= 0, got " + std::to_string(o.seed));
  r.finish();
}

void read_data(YamlReader r, data::DataOptions& o) {
  r.read_enum("dataset", o.dataset,
              named({data::Dataset::kFashionMnist, data::Dataset::kCifar10}, data::dataset_name));
  // Sources and shard folders default per data set, so `dataset: cifar10` alone is enough.
  // CIFAR-10 lives inside the project (git-ignored), where `agave_data fetch cifar10 --output
  // data/cifar10` puts it; Fashion-MNIST where Debian's dataset-fashion-mnist installs it.
  o.source =
      o.dataset == data::Dataset::kCifar10 ? "data/cifar10" : "/usr/share/datasets/fashion-mnist";
  o.shards = std::string("data-cache/") + data::dataset_name(o.dataset);
  r.read("source", o.source);
  r.read("shards", o.shards);
  r.read("images_per_shard", o.images_per_shard);
  r.read("prefetch_batches", o.prefetch_batches);
  r.read("shuffle", o.shuffle);
  r.read("verify_checksums", o.verify_checksums);
  require(!o.source.empty(), r, "source", "must not be empty");
  require(!o.shards.empty(), r, "shards", "must not be empty");
  require(o.images_per_shard >= 1, r, "images_per_shard",
          "must be >= 1, got " + std::to_string(o.images_per_shard));
  require(o.prefetch_batches >= 1 && o.prefetch_batches <= 1024, r, "prefetch_batches",
          "must be in [1, 1024], got " + std::to_string(o.prefetch_batches));
  r.finish();
}

bool divides(int64_t d, int64_t n) { return d > 0 && n % d == 0; }
bool power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

std::string divisors_of(int64_t n) {
  std::vector<std::string> out;
  for (int64_t d = 1; d <= n; ++d)
    if (n % d == 0) out.push_back(std::to_string(d));
  return join(out, ", ");
}

void read_model(YamlReader r, model::AgaveOptions& o, const data::ImageShape& shape) {
  o.image_channels(shape.channels).image_size(shape.height);
  r.read_enum(
      "kind", o.kind(),
      named({model::ModelKind::kAgave, model::ModelKind::kVaeOnly, model::ModelKind::kPixelCnnOnly},
            model::model_kind_name));
  {
    YamlReader v = r.child("vae");
    auto& vae = o.vae();
    v.read("depth", vae.depth());
    v.read("width", vae.width());
    v.read("latent_channels", vae.latent_channels());
    vae.latent_resolution(shape.height / 2);
    v.read("latent_resolution", vae.latent_resolution());
    v.read("free_bits", vae.free_bits());
    v.read("iaf_steps", vae.iaf_steps());
    require(vae.depth() >= 1 && vae.depth() <= 64, v, "depth",
            "must be in [1, 64], got " + std::to_string(vae.depth()));
    require(vae.width() >= 1, v, "width", "must be >= 1, got " + std::to_string(vae.width()));
    require(vae.latent_channels() >= 1, v, "latent_channels",
            "must be >= 1, got " + std::to_string(vae.latent_channels()));
    const int64_t lr = vae.latent_resolution();
    require(divides(lr, shape.height) && power_of_two(shape.height / lr) && lr < shape.height, v,
            "latent_resolution",
            "must be the image size " + std::to_string(shape.height) +
                " divided by a power of two >= 2, got " + std::to_string(lr));
    require(vae.free_bits() >= 0, v, "free_bits", "must be >= 0, got " + num(vae.free_bits()));
    require(vae.iaf_steps() >= 0, v, "iaf_steps",
            "must be >= 0, got " + std::to_string(vae.iaf_steps()));
    v.finish();
  }
  {
    YamlReader p = r.child("pixelcnn");
    auto& pc = o.pixelcnn();
    p.read("nr_resnet", pc.nr_resnet());
    p.read("nr_filters", pc.nr_filters());
    p.read("nr_logistic_mix", pc.nr_logistic_mix());
    p.read("dropout", pc.dropout());
    p.read_enum(
        "conditioning", pc.conditioning(),
        named({model::PixelCnnConditioning::kPerLayer, model::PixelCnnConditioning::kShared},
              model::pixelcnn_conditioning_name));
    require(pc.nr_resnet() >= 1, p, "nr_resnet",
            "must be >= 1, got " + std::to_string(pc.nr_resnet()));
    require(pc.nr_filters() >= 1, p, "nr_filters",
            "must be >= 1, got " + std::to_string(pc.nr_filters()));
    require(pc.nr_logistic_mix() >= 1, p, "nr_logistic_mix",
            "must be >= 1, got " + std::to_string(pc.nr_logistic_mix()));
    require(pc.dropout() >= 0 && pc.dropout() < 1, p, "dropout",
            "must be in [0, 1), got " + num(pc.dropout()));
    p.finish();
  }
  r.finish();
}

void read_aux(YamlReader r, model::AuxOptions& o, const data::ImageShape& shape) {
  o.resolution(shape.height);
  r.read("resolution", o.resolution());
  r.read("color_bins", o.color_bins());
  require(divides(o.resolution(), shape.height), r, "resolution",
          "must divide the image size " + std::to_string(shape.height) + " (allowed: " +
              divisors_of(shape.height) + "), got " + std::to_string(o.resolution()));
  require(o.color_bins() >= 2 && divides(o.color_bins(), 256), r, "color_bins",
          "must divide 256 and be >= 2 (allowed: 2, 4, 8, 16, 32, 64, 128, 256), got " +
              std::to_string(o.color_bins()));
  r.finish();
}

void read_loss(YamlReader r, trainer::LossOptions& o) {
  r.read("lambda", o.lambda);
  require(o.lambda >= 0, r, "lambda", "must be >= 0, got " + num(o.lambda));
  r.finish();
}

const std::vector<std::pair<std::string, trainer::PhaseKind>> kPhases = {
    {"pretrain_vae", trainer::PhaseKind::kPretrainVae},
    {"pretrain_pixelcnn", trainer::PhaseKind::kPretrainPixelCnn},
    {"joint", trainer::PhaseKind::kJoint},
    {"no_aux", trainer::PhaseKind::kNoAux}};

// A phase's own loss settings (optional): lambda, free_bits, and terms as a list of
// pixel / aux / kl.
void read_phase_loss(YamlReader& p, trainer::PhaseOptions& ph) {
  if (p.has("lambda")) {
    double v = 0;
    p.read("lambda", v);
    ph.lambda = v;
  }
  if (p.has("free_bits")) {
    double v = 0;
    p.read("free_bits", v);
    ph.free_bits = v;
  }
  if (!p.has("terms")) return;
  const YAML::Node terms = p.raw("terms");
  if (!terms.IsSequence() || terms.size() == 0) {
    p.fail("terms", "expected a non-empty list of pixel, aux, kl");
  }
  model::LossSelection on{false, false, false};
  for (const auto& t : terms) {
    const std::string name = t.IsScalar() ? t.Scalar() : "";
    if (name == "pixel") {
      on.pixel = true;
    } else if (name == "aux") {
      on.aux = true;
    } else if (name == "kl") {
      on.kl = true;
    } else {
      p.fail("terms", "'" + name + "' is not a loss term; allowed: pixel, aux, kl");
    }
  }
  ph.terms = on;
}

// conditioned: false trains the PixelCNN without f(z); only the PixelCNN's pretraining has
// no use for the VAE.
void read_phase_conditioned(YamlReader& p, trainer::PhaseOptions& ph) {
  if (!p.has("conditioned")) return;
  p.read("conditioned", ph.conditioned);
  if (!ph.conditioned && ph.kind != trainer::PhaseKind::kPretrainPixelCnn) {
    p.fail("conditioned", std::string("false is for pretrain_pixelcnn phases only, not ") +
                              trainer::phase_name(ph.kind));
  }
}

void read_train(YamlReader r, trainer::TrainOptions& o) {
  r.read("batch_size", o.batch_size);
  require(o.batch_size >= 1, r, "batch_size", "must be >= 1, got " + std::to_string(o.batch_size));
  const bool has_steps = r.has("steps");
  r.read("steps", o.steps);
  YAML::Node phases = r.raw("phases");
  o.phases.clear();
  if (phases && !phases.IsNull()) {
    if (!phases.IsSequence() || phases.size() == 0) {
      r.fail("phases", "expected a non-empty list of {name, steps}");
    }
    int64_t total = 0;
    for (size_t i = 0; i < phases.size(); ++i) {
      YamlReader p(phases[i], r.key_path("phases") + "[" + std::to_string(i) + "]", r.origins());
      trainer::PhaseOptions ph;
      if (!p.has("name"))
        p.fail("name", "required: one of pretrain_vae, pretrain_pixelcnn, joint, no_aux");
      if (!p.has("steps")) p.fail("steps", "required: the number of steps of this phase");
      p.read_enum("name", ph.kind, kPhases);
      p.read("steps", ph.steps);
      require(ph.steps >= 1, p, "steps", "must be >= 1, got " + std::to_string(ph.steps));
      read_phase_loss(p, ph);
      read_phase_conditioned(p, ph);
      p.finish();
      total += ph.steps;
      o.phases.push_back(ph);
    }
    if (has_steps && o.steps != total) {
      r.fail("steps", "is " + std::to_string(o.steps) + " but the phases add up to " +
                          std::to_string(total) + "; give one or make them agree");
    }
    o.steps = total;
  } else {
    if (!has_steps) r.fail("steps", "required (or a list of phases)");
    require(o.steps >= 1, r, "steps", "must be >= 1, got " + std::to_string(o.steps));
    o.phases.push_back({trainer::PhaseKind::kJoint, o.steps});
  }
  r.read_enum("pretrain", o.pretrain,
              named({trainer::PretrainSchedule::kSequential, trainer::PretrainSchedule::kParallel},
                    trainer::pretrain_schedule_name));
  r.read("pretrain_vae_ranks", o.pretrain_vae_ranks);
  require(o.pretrain_vae_ranks >= 0, r, "pretrain_vae_ranks",
          "must be >= 0 (0 = half of a run's ranks), got " + std::to_string(o.pretrain_vae_ranks));
  if (o.pretrain_vae_ranks > 0 && o.pretrain != trainer::PretrainSchedule::kParallel) {
    r.fail("pretrain_vae_ranks", "is for train.pretrain: parallel only");
  }
  if (o.pretrain == trainer::PretrainSchedule::kParallel) {
    try {
      trainer::check_parallel_phases(o.phases);
    } catch (const std::invalid_argument& e) {
      r.fail("pretrain", e.what());
    }
  }
  {
    YamlReader op = r.child("optimizer");
    auto& a = o.optimizer;
    op.read_enum("name", a.kind, named({trainer::OptimizerKind::kAdamax}, trainer::optimizer_name));
    op.read("lr", a.lr);
    op.read("beta1", a.beta1);
    op.read("beta2", a.beta2);
    op.read("eps", a.eps);
    require(a.lr > 0, op, "lr", "must be > 0, got " + num(a.lr));
    require(a.beta1 >= 0 && a.beta1 < 1, op, "beta1", "must be in [0, 1), got " + num(a.beta1));
    require(a.beta2 >= 0 && a.beta2 < 1, op, "beta2", "must be in [0, 1), got " + num(a.beta2));
    require(a.eps > 0, op, "eps", "must be > 0, got " + num(a.eps));
    op.finish();
  }
  r.read("grad_clip", o.grad_clip);
  r.read("ema_decay", o.ema_decay);
  r.read("ema_warmup", o.ema_warmup);
  r.read_enum(
      "precision", o.precision,
      named({trainer::Precision::kAuto, trainer::Precision::kFp32, trainer::Precision::kBf16},
            trainer::precision_name));
  r.read("max_nonfinite_steps", o.max_nonfinite_steps);
  require(o.grad_clip >= 0, r, "grad_clip", "must be >= 0 (0 = off), got " + num(o.grad_clip));
  require(o.ema_decay >= 0 && o.ema_decay < 1, r, "ema_decay",
          "must be in [0, 1), got " + num(o.ema_decay));
  require(o.max_nonfinite_steps >= 1, r, "max_nonfinite_steps",
          "must be >= 1, got " + std::to_string(o.max_nonfinite_steps));
  r.finish();
}

void read_eval(YamlReader r, trainer::EvalOptions& o) {
  r.read("every", o.every);
  r.read("at_start", o.at_start);
  r.read("importance_samples", o.importance_samples);
  r.read("subset", o.subset);
  r.read("batch_size", o.batch_size);
  r.read("use_ema", o.use_ema);
  r.read("sample_images", o.sample_images);
  r.read("final_subset", o.final_subset);
  r.read("samples_per_latent", o.samples_per_latent);
  require(o.sample_images >= 0 && o.sample_images <= 64, r, "sample_images",
          "must be in [0, 64], got " + std::to_string(o.sample_images));
  require(o.every >= 0, r, "every",
          "must be >= 0 (0 = at the end), got " + std::to_string(o.every));
  require(o.importance_samples >= 1, r, "importance_samples",
          "must be >= 1, got " + std::to_string(o.importance_samples));
  require(o.subset >= 0, r, "subset", "must be >= 0 (0 = all), got " + std::to_string(o.subset));
  require(o.final_subset >= 0, r, "final_subset",
          "must be >= 0 (0 = all), got " + std::to_string(o.final_subset));
  require(o.samples_per_latent >= 1 && o.samples_per_latent <= 64, r, "samples_per_latent",
          "must be in [1, 64], got " + std::to_string(o.samples_per_latent));
  require(o.batch_size >= 1, r, "batch_size", "must be >= 1, got " + std::to_string(o.batch_size));
  r.finish();
}

void read_checkpoint(YamlReader r, trainer::CheckpointOptions& o) {
  r.read("dir", o.dir);
  r.read("every", o.every);
  r.read("keep", o.keep);
  require(o.every >= 0, r, "every",
          "must be >= 0 (0 = at the end), got " + std::to_string(o.every));
  require(o.keep >= 1, r, "keep", "must be >= 1, got " + std::to_string(o.keep));
  r.finish();
}

void read_monitoring(YamlReader r, monitoring::MonitoringOptions& o) {
  r.read("prometheus", o.prometheus);
  r.read("bind", o.bind);
  r.read("port", o.port);
  r.read("next_free_port", o.next_free_port);
  r.read("every_rank", o.every_rank);
  r.read("log_every", o.log_every);
  r.read("jsonl", o.jsonl);
  r.read_enum("progress", o.progress,
              named({monitoring::ProgressMode::kAuto, monitoring::ProgressMode::kBar,
                     monitoring::ProgressMode::kPlain, monitoring::ProgressMode::kOff},
                    monitoring::progress_mode_name));
  r.read("linger_seconds", o.linger_seconds);
  r.read("profile_steps", o.profile_steps);
  require(o.profile_steps >= 0 && o.profile_steps <= 1000, r, "profile_steps",
          "must be in [0, 1000], got " + std::to_string(o.profile_steps));
  require(o.linger_seconds >= 0 && o.linger_seconds <= 3600, r, "linger_seconds",
          "must be in [0, 3600], got " + num(o.linger_seconds));
  require(!o.bind.empty(), r, "bind", "must be an address such as 127.0.0.1 or 0.0.0.0");
  // 0: the kernel picks a free port; the run prints its metrics URL with it.
  require(o.port >= 0 && o.port <= 65535, r, "port",
          "must be in [0, 65535] (0: any free port), got " + std::to_string(o.port));
  require(o.log_every >= 1, r, "log_every", "must be >= 1, got " + std::to_string(o.log_every));
  r.finish();
}

void read_cluster(YamlReader r, cluster::ClusterOptions& o) {
  r.read_enum("backend", o.backend,
              named({cluster::Backend::kAuto, cluster::Backend::kMpi, cluster::Backend::kNccl},
                    cluster::backend_name));
  r.read("threads_per_rank", o.threads_per_rank);
  r.read("timeout_seconds", o.timeout_seconds);
  r.read("bucket_mb", o.bucket_mb);
  r.read_enum("overlap", o.overlap,
              named({cluster::Overlap::kAuto, cluster::Overlap::kOn, cluster::Overlap::kOff},
                    cluster::overlap_name));
  require(o.threads_per_rank >= 0, r, "threads_per_rank",
          "must be >= 0 (0 = cores / local ranks), got " + std::to_string(o.threads_per_rank));
  require(o.bucket_mb > 0, r, "bucket_mb", "must be > 0, got " + num(o.bucket_mb));
  r.finish();
}

void read_sweep(YamlReader r, SweepOptions& o) {
  r.read("ranks_per_run", o.ranks_per_run);
  require(o.ranks_per_run >= 0, r, "ranks_per_run",
          "must be >= 0 (0 = all ranks), got " + std::to_string(o.ranks_per_run));
  o.grid.clear();
  YAML::Node grid = r.raw("grid");
  if (grid && !grid.IsNull()) {
    if (!grid.IsMap()) r.fail("grid", "expected a mapping of config keys to lists of values");
    for (const auto& kv : grid) {
      const std::string key = kv.first.Scalar();
      if (key.rfind("sweep", 0) == 0) {
        r.fail_node(kv.first, "grid." + key, "the sweep cannot sweep itself");
      }
      if (!kv.second.IsSequence() || kv.second.size() == 0) {
        r.fail_node(kv.second, "grid." + key, "expected a non-empty list of values");
      }
      SweepAxis axis{key, {}};
      for (const auto& v : kv.second) {
        if (!v.IsScalar()) r.fail_node(v, "grid." + key, "sweep values must be scalars");
        axis.values.push_back(v);
      }
      o.grid.push_back(axis);
    }
    // Refused before anything is expanded: the product is computed without overflow.
    uint64_t points = 1;
    std::string factors;
    for (const auto& axis : o.grid) {
      factors += (factors.empty() ? "" : " x ") + std::to_string(axis.values.size());
      const auto next =
          data::checked_mul(points, axis.values.size(), static_cast<uint64_t>(kMaxSweepPoints));
      points = next ? *next : static_cast<uint64_t>(kMaxSweepPoints) + 1;
    }
    if (points > static_cast<uint64_t>(kMaxSweepPoints)) {
      r.fail("grid", "has " + factors + " points, more than the " +
                         std::to_string(kMaxSweepPoints) +
                         " a sweep may have; split it into several configs");
    }
  }
  r.finish();
}

// The baselines of Table 1 have one part each: one joint phase, and the VAE alone models x
// itself with its decoder.
void check_baseline(const YAML::Node& root, const Origins& origins, const Config& c) {
  const auto kind = c.model.kind();
  if (kind == model::ModelKind::kAgave) return;
  const std::string name = model::model_kind_name(kind);
  for (const auto& p : c.train.phases) {
    if (p.kind != trainer::PhaseKind::kJoint) {
      YamlReader(root["train"], "train", origins)
          .fail("phases", std::string("phase '") + trainer::phase_name(p.kind) +
                              "' has no meaning for model.kind " + name +
                              ", which trains in one joint phase (give train.steps)");
    }
  }
  const auto& aux = c.model.aux();
  if (kind == model::ModelKind::kVaeOnly &&
      (aux.resolution() != c.model.image_size() || aux.color_bins() != 256)) {
    YamlReader(root["aux"], "aux", origins)
        .fail("resolution",
              "model.kind vae_only models x with the VAE decoder: aux must be x "
              "itself (resolution " +
                  std::to_string(c.model.image_size()) + ", color_bins 256), got " +
                  std::to_string(aux.resolution()) + " and " + std::to_string(aux.color_bins()));
  }
}

Config parse_with(const YAML::Node& root, const Origins& origins) {
  YamlReader r(root, "", origins);
  Config c;
  read_run(r.child("run"), c.run);
  read_data(r.child("data"), c.data);
  const data::ImageShape shape = data::image_shape(c.data.dataset);
  read_model(r.child("model"), c.model, shape);
  read_aux(r.child("aux"), c.model.aux(), shape);
  read_loss(r.child("loss"), c.loss);
  read_train(r.child("train"), c.train);
  read_eval(r.child("eval"), c.eval);
  read_checkpoint(r.child("checkpoint"), c.checkpoint);
  read_monitoring(r.child("monitoring"), c.monitoring);
  read_cluster(r.child("cluster"), c.cluster);
  read_sweep(r.child("sweep"), c.sweep);
  r.finish();
  // Cross-section checks that need the whole picture.
  check_baseline(root, origins, c);
  const std::string split = batch_split_problem(c.train.batch_size, c.sweep.ranks_per_run);
  if (c.sweep.ranks_per_run > 0 && !split.empty()) {
    YamlReader t(root["train"], "train", origins);
    t.fail("batch_size", "the global batch " + std::to_string(c.train.batch_size) + " " + split +
                             " (sweep.ranks_per_run = " + std::to_string(c.sweep.ranks_per_run) +
                             ")");
  }
  return c;
}

// ---- overrides and sweeps ------------------------------------------------------------------

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream ss(path);
  std::string p;
  while (std::getline(ss, p, '.')) parts.push_back(p);
  return parts;
}

// Sets `value` at a dotted `path`, creating mappings on the way.
void set_path(YAML::Node root, const std::string& path, const YAML::Node& value,
              const std::string& what) {
  const auto parts = split_path(path);
  for (const auto& p : parts) {
    if (p.empty()) throw ConfigError(what + ": '" + path + "' is not a key path like loss.lambda");
  }
  YAML::Node cur = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = cur[parts[i]];
    if (!next.IsDefined() || next.IsNull()) {
      cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next = cur[parts[i]];
    } else if (!next.IsMap()) {
      throw ConfigError(what + ": " + join({parts.begin(), parts.begin() + i + 1}, ".") +
                        " is a value, not a section");
    }
    cur.reset(next);
  }
  cur[parts.back()] = value;
}

YAML::Node load_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw ConfigError(file + ": cannot read the config file");
  // A config is a few KiB; a huge file is a mistake (or hostile) and would only cost memory.
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(file, ec);
  if (!ec && bytes > kMaxConfigBytes) {
    throw ConfigError(file + ": the config file is " + std::to_string(bytes) + " bytes; at most " +
                      std::to_string(kMaxConfigBytes) + " allowed");
  }
  try {
    YAML::Node root = YAML::Load(in);
    if (root.IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap()) {
      throw ConfigError(file + ":" + std::to_string(root.Mark().line + 1) +
                        ": expected a mapping of sections (run, data, model, ...) at the top");
    }
    return root;
  } catch (const YAML::Exception& e) {
    throw ConfigError(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": malformed YAML: " + e.msg);
  }
}

// The label of a swept key in run names: the names Prometheus labels and plots use for the
// paper's three axes, the last path component otherwise (the whole path where two collide).
std::string label_of(const std::string& key) {
  for (const auto& axis : monitoring::kPaperAxes) {
    if (key == axis.config_key) return axis.label;
  }
  const auto dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

std::string short_key(const std::string& key, const std::vector<SweepAxis>& grid) {
  int same = 0;
  for (const auto& a : grid) same += label_of(a.key) == label_of(key);
  if (same <= 1) return label_of(key);
  std::string full = key;
  for (char& ch : full)
    if (ch == '.') ch = '_';
  return full;
}

std::string safe_value(std::string v) {
  for (char& ch : v)
    if (ch == '/' || ch == ' ' || ch == ',' || ch == '=') ch = '_';
  return v;
}

}  // namespace

Config parse_config(const YAML::Node& root, const std::string& file) {
  return parse_with(root, Origins(file));
}

namespace {

// Point `i` of the grid as axis indices: the last axis varies fastest, so points follow the
// file's order.
std::vector<size_t> point_indices(const std::vector<SweepAxis>& grid, size_t i) {
  std::vector<size_t> index(grid.size(), 0);
  for (size_t a = grid.size(); a > 0; --a) {
    index[a - 1] = i % grid[a - 1].values.size();
    i /= grid[a - 1].values.size();
  }
  return index;
}

}  // namespace

struct Sweep::State {
  std::string file;
  YAML::Node root;
  Origins origins;
  Config base;
  std::string run_root;
  size_t points = 1;
  explicit State(const std::string& f) : file(f), origins(f) {}
};

Sweep::Sweep(RunSpec only) : only_(std::make_shared<RunSpec>(std::move(only))) {
  first_ = *only_;
  batch_sizes_ = {{first_.name, first_.config.train.batch_size}};
}

size_t Sweep::size() const { return only_ ? 1 : state_ ? state_->points : 0; }

RunSpec Sweep::point(size_t i) const {
  if (i >= size())
    throw std::out_of_range("sweep point " + std::to_string(i) + " of " + std::to_string(size()));
  if (only_) return *only_;
  const State& st = *state_;
  const auto& grid = st.base.sweep.grid;
  if (grid.empty()) return RunSpec{st.base.run.name, st.run_root, {}, st.base};
  const auto index = point_indices(grid, i);
  YAML::Node point = YAML::Clone(st.root);
  Origins point_origins = st.origins;
  std::vector<std::string> name_parts;
  std::map<std::string, std::string> point_labels;
  for (size_t a = 0; a < grid.size(); ++a) {
    const YAML::Node& v = grid[a].values[index[a]];
    const std::string label = short_key(grid[a].key, grid) + "=" + safe_value(v.Scalar());
    name_parts.push_back(label);
    point_labels[short_key(grid[a].key, grid)] = v.Scalar();
    set_path(point, grid[a].key, YAML::Clone(v),
             st.origins.describe("sweep.grid", v) + " (sweep " + label + ")");
    point_origins.mark(grid[a].key, st.file + ":" + std::to_string(v.Mark().line + 1) +
                                        " (sweep point " + label + ")");
  }
  RunSpec spec;
  spec.name = join(name_parts, ",");
  spec.labels = point_labels;
  spec.config = parse_with(point, point_origins);
  spec.output_dir = st.run_root + "/" + spec.name;
  // One run, one folder: an explicit checkpoint folder is the sweep's, each point gets its own.
  auto& dir = spec.config.checkpoint.dir;
  if (!dir.empty()) dir += "/" + spec.name;
  return spec;
}

namespace {

size_t point_number(const std::vector<SweepAxis>& grid, const std::vector<size_t>& index) {
  size_t n = 0;
  for (size_t a = 0; a < grid.size(); ++a) n = n * grid[a].values.size() + index[a];
  return n;
}

// "3 {lambda: 2.0}": a point as the user wrote its values.
std::string describe_point(const std::vector<SweepAxis>& grid, const std::vector<size_t>& index) {
  std::string values;
  for (size_t a = 0; a < grid.size(); ++a) {
    values +=
        (a ? ", " : "") + short_key(grid[a].key, grid) + ": " + grid[a].values[index[a]].Scalar();
  }
  return std::to_string(point_number(grid, index)) + " {" + values + "}";
}

// One run, one folder, never outside run.output_dir: run.name is a plain folder name, no
// sweep value is empty, and no two points name the same folder. Point names join one
// "key=value" per axis, so two points collide exactly when some axis has two values that are
// equal once made folder names; checking each axis finds every collision without expanding
// the grid.
void check_run_folders(const Config& base, const std::string& run_root, const std::string& file) {
  const std::string& name = base.run.name;
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    throw ConfigError(file + ": run.name = '" + name +
                      "': must be a plain folder name (not empty, '.' or '..', no '/'), so the "
                      "run stays inside run.output_dir");
  }
  const auto& grid = base.sweep.grid;
  for (size_t a = 0; a < grid.size(); ++a) {
    std::map<std::string, size_t> first_of;
    for (size_t v = 0; v < grid[a].values.size(); ++v) {
      std::vector<size_t> index(grid.size(), 0);
      index[a] = v;
      const std::string value = grid[a].values[v].Scalar();
      if (value.empty()) {
        throw ConfigError(file + ": sweep point " + describe_point(grid, index) +
                          ": the value of " + short_key(grid[a].key, grid) +
                          " is empty; an empty value names no folder");
      }
      const auto [it, fresh] = first_of.emplace(safe_value(value), v);
      if (fresh) continue;
      std::vector<size_t> other = index;
      other[a] = it->second;
      const std::string folder = short_key(grid[a].key, grid) + "=" + safe_value(value);
      throw ConfigError(file + ": sweep points " + describe_point(grid, other) + " and " +
                        describe_point(grid, index) + " would both write to " + run_root + "/..." +
                        folder + "...; list each value once, with values that differ " +
                        "after '/', ' ', ',' and '=' become '_'");
    }
  }
}

}  // namespace

std::vector<RunSpec> Sweep::all() const {
  std::vector<RunSpec> runs;
  runs.reserve(size());
  for (size_t i = 0; i < size(); ++i) runs.push_back(point(i));
  return runs;
}

Sweep load_sweep(const std::string& file, const std::vector<std::string>& overrides) {
  auto st = std::make_shared<Sweep::State>(file);
  st->root = load_file(file);
  YAML::Node& root = st->root;
  Origins& origins = st->origins;
  std::set<std::string> overridden;
  for (const auto& o : overrides) {
    const std::string what = "--set " + o;
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ConfigError(what + ": expected key.path=value, e.g. --set loss.lambda=4");
    }
    const std::string path = o.substr(0, eq);
    YAML::Node value;
    try {
      value = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw ConfigError(what + ": the value is not valid YAML: " + e.msg);
    }
    set_path(root, path, value, what);
    origins.mark(path, what);
    overridden.insert(path);
  }

  // Read once without expanding, to validate the sweep section (and its size) and the base.
  st->base = parse_with(root, origins);
  const auto& grid = st->base.sweep.grid;
  for (const auto& axis : grid) {
    for (const auto& o : overridden) {
      if (o == axis.key || axis.key.rfind(o + ".", 0) == 0 || o.rfind(axis.key + ".", 0) == 0) {
        throw ConfigError("--set " + o + ": conflicts with the sweep over " + axis.key + " (" +
                          origins.describe("sweep.grid", axis.values.front()) +
                          "); change sweep.grid." + axis.key + " instead");
      }
    }
  }
  st->run_root = st->base.run.output_dir + "/" + st->base.run.name;
  check_run_folders(st->base, st->run_root, file);
  for (const auto& axis : grid) st->points *= axis.values.size();  // <= kMaxSweepPoints

  Sweep sweep;
  sweep.state_ = st;
  // Expansion is lazy (each rank expands the points it trains), but every value of every axis
  // is validated now, in a real point of the grid: the points that differ from point 0 in one
  // axis only. A bad value therefore stops the job here, before MPI starts, on every rank
  // alike; only a combination that is invalid while each of its values is valid elsewhere is
  // found when its point is expanded (and fails that run, exit code 2).
  sweep.first_ = sweep.point(0);
  sweep.batch_sizes_ = {{sweep.first_.name, sweep.first_.config.train.batch_size}};
  size_t stride = 1;
  for (size_t a = grid.size(); a > 0; --a) {
    for (size_t k = 1; k < grid[a - 1].values.size(); ++k) {
      const RunSpec spec = sweep.point(k * stride);
      sweep.batch_sizes_.emplace_back(spec.name, spec.config.train.batch_size);
    }
    stride *= grid[a - 1].values.size();
  }
  return sweep;
}

std::vector<RunSpec> load_runs(const std::string& file, const std::vector<std::string>& overrides) {
  return load_sweep(file, overrides).all();
}

// ---- writing -------------------------------------------------------------------------------

// One line per key, in the order of docs/configuration.md (long on purpose: the key list is
// the point, and split up it would no longer read against the reader functions above).
YAML::Node to_yaml(const Config& c) {
  YAML::Node n;
  n["run"]["name"] = c.run.name;
  n["run"]["output_dir"] = c.run.output_dir;
  n["run"]["seed"] = c.run.seed;

  n["data"]["dataset"] = data::dataset_name(c.data.dataset);
  n["data"]["source"] = c.data.source;
  n["data"]["shards"] = c.data.shards;
  n["data"]["images_per_shard"] = c.data.images_per_shard;
  n["data"]["prefetch_batches"] = c.data.prefetch_batches;
  n["data"]["shuffle"] = c.data.shuffle;
  n["data"]["verify_checksums"] = c.data.verify_checksums;

  const auto& vae = c.model.vae();
  n["model"]["kind"] = model::model_kind_name(c.model.kind());
  n["model"]["vae"]["depth"] = vae.depth();
  n["model"]["vae"]["width"] = vae.width();
  n["model"]["vae"]["latent_channels"] = vae.latent_channels();
  n["model"]["vae"]["latent_resolution"] = vae.latent_resolution();
  n["model"]["vae"]["free_bits"] = vae.free_bits();
  n["model"]["vae"]["iaf_steps"] = vae.iaf_steps();
  const auto& pc = c.model.pixelcnn();
  n["model"]["pixelcnn"]["nr_resnet"] = pc.nr_resnet();
  n["model"]["pixelcnn"]["nr_filters"] = pc.nr_filters();
  n["model"]["pixelcnn"]["nr_logistic_mix"] = pc.nr_logistic_mix();
  n["model"]["pixelcnn"]["dropout"] = pc.dropout();
  n["model"]["pixelcnn"]["conditioning"] = model::pixelcnn_conditioning_name(pc.conditioning());

  n["aux"]["resolution"] = c.model.aux().resolution();
  n["aux"]["color_bins"] = c.model.aux().color_bins();
  n["loss"]["lambda"] = c.loss.lambda;

  auto t = n["train"];
  t["batch_size"] = c.train.batch_size;
  t["steps"] = c.train.steps;
  for (const auto& p : c.train.phases) {
    YAML::Node ph;
    ph["name"] = trainer::phase_name(p.kind);
    ph["steps"] = p.steps;
    if (p.lambda) ph["lambda"] = *p.lambda;
    if (p.free_bits) ph["free_bits"] = *p.free_bits;
    if (!p.conditioned) ph["conditioned"] = false;
    if (p.terms) {
      for (const auto& [on, name] :
           {std::pair{p.terms->pixel, "pixel"}, {p.terms->aux, "aux"}, {p.terms->kl, "kl"}}) {
        if (on) ph["terms"].push_back(name);
      }
    }
    ph.SetStyle(YAML::EmitterStyle::Flow);
    t["phases"].push_back(ph);
  }
  t["pretrain"] = trainer::pretrain_schedule_name(c.train.pretrain);
  t["pretrain_vae_ranks"] = c.train.pretrain_vae_ranks;
  t["optimizer"]["name"] = trainer::optimizer_name(c.train.optimizer.kind);
  t["optimizer"]["lr"] = c.train.optimizer.lr;
  t["optimizer"]["beta1"] = c.train.optimizer.beta1;
  t["optimizer"]["beta2"] = c.train.optimizer.beta2;
  t["optimizer"]["eps"] = c.train.optimizer.eps;
  t["grad_clip"] = c.train.grad_clip;
  t["ema_decay"] = c.train.ema_decay;
  t["ema_warmup"] = c.train.ema_warmup;
  t["precision"] = trainer::precision_name(c.train.precision);
  t["max_nonfinite_steps"] = c.train.max_nonfinite_steps;

  n["eval"]["every"] = c.eval.every;
  n["eval"]["at_start"] = c.eval.at_start;
  n["eval"]["importance_samples"] = c.eval.importance_samples;
  n["eval"]["subset"] = c.eval.subset;
  n["eval"]["batch_size"] = c.eval.batch_size;
  n["eval"]["use_ema"] = c.eval.use_ema;
  n["eval"]["sample_images"] = c.eval.sample_images;
  n["eval"]["final_subset"] = c.eval.final_subset;
  n["eval"]["samples_per_latent"] = c.eval.samples_per_latent;

  // Empty means <run>/checkpoints; an empty value is refused on reading, so it is left out.
  if (!c.checkpoint.dir.empty()) n["checkpoint"]["dir"] = c.checkpoint.dir;
  n["checkpoint"]["every"] = c.checkpoint.every;
  n["checkpoint"]["keep"] = c.checkpoint.keep;

  const auto& m = c.monitoring;
  n["monitoring"]["prometheus"] = m.prometheus;
  n["monitoring"]["bind"] = m.bind;
  n["monitoring"]["port"] = m.port;
  n["monitoring"]["next_free_port"] = m.next_free_port;
  n["monitoring"]["every_rank"] = m.every_rank;
  n["monitoring"]["log_every"] = m.log_every;
  n["monitoring"]["jsonl"] = m.jsonl;
  n["monitoring"]["progress"] = monitoring::progress_mode_name(m.progress);
  n["monitoring"]["linger_seconds"] = m.linger_seconds;
  n["monitoring"]["profile_steps"] = m.profile_steps;

  n["cluster"]["backend"] = cluster::backend_name(c.cluster.backend);
  n["cluster"]["threads_per_rank"] = c.cluster.threads_per_rank;
  n["cluster"]["timeout_seconds"] = c.cluster.timeout_seconds;
  n["cluster"]["bucket_mb"] = c.cluster.bucket_mb;
  n["cluster"]["overlap"] = cluster::overlap_name(c.cluster.overlap);

  n["sweep"]["ranks_per_run"] = c.sweep.ranks_per_run;
  if (!c.sweep.grid.empty()) {
    for (const auto& axis : c.sweep.grid) {
      YAML::Node values(YAML::NodeType::Sequence);
      for (const auto& v : axis.values) values.push_back(YAML::Clone(v));
      values.SetStyle(YAML::EmitterStyle::Flow);
      n["sweep"]["grid"][axis.key] = values;
    }
  }
  return n;
}

std::string to_yaml_string(const Config& config) {
  YAML::Emitter out;
  out << to_yaml(config);
  return std::string(out.c_str()) + "\n";
}

}  // namespace agave::launcher
