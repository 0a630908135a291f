#pragma once
// The config keys, one table per section: each row names a key, the field it sets (whose
// initializer is its default), its range (numbers) or allowed names (enums, from the name
// function beside the enum) and a doc line. Reading with range checks (config_read.cpp),
// to_yaml and --print-config (config_write.cpp) and the docs check (tests/launcher/
// config_table_test.cpp) all walk these tables, so a new key is one row here; the test fails
// for a struct field without a row and for a key docs/configuration.md lists differently.
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "launcher/config.h"
#include "launcher/yaml_reader.h"

namespace agave::launcher {

// A key whose value is a string, a bool, a name of a closed set, a list or a section.
struct Key {
  Key(const char* n, const char* d) : name(n), doc(d) {}
  const char* name;
  const char* doc;
  // A list element's key that must be given (train.phases[]: name, steps).
  bool required = false;
  // The default depends on other keys (data.dataset's image size, ...): `derived` says how.
  const char* derived = nullptr;
  Key& must() {
    required = true;
    return *this;
  }
  Key& derived_from(const char* how) {
    derived = how;
    return *this;
  }
};

// A numeric key: its value must lie in `range` (checked as it is read).
struct Num : Key {
  Num(const char* n, NumericRange r, const char* d) : Key(n, d), range(r) {}
  NumericRange range;
  Num& must() {
    required = true;
    return *this;
  }
  Num& derived_from(const char* how) {
    derived = how;
    return *this;
  }
};

// A field of an options struct that no config key sets, with the reason.
struct NotAKey {
  const char* name;
  const char* why;
};

// The values of each closed set; their names come from the name function beside the enum.
template <class E>
struct EnumNames;

// The table of an options struct: Table<T>::visit(o, v) calls v(row, field) for every field
// of `o` (T or const T), in the order --print-config writes them.
template <class T>
struct Table;

template <class T, class = void>
struct has_table : std::false_type {};
template <class T>
struct has_table<T, std::void_t<decltype(Table<T>::kName)>> : std::true_type {};
// A list of sections (train.phases).
template <class T>
struct is_table_list : std::false_type {};
template <class T>
struct is_table_list<std::vector<T>> : has_table<T> {};

// ---- closed sets ---------------------------------------------------------------------------

template <class E, const char* (*Name)(E), E... Values>
struct ClosedSet {
  static constexpr E values[] = {Values...};
  static const char* name(E v) { return Name(v); }
};

template <>
struct EnumNames<data::Dataset> {
  static constexpr const auto& values = data::kDatasets;
  static const char* name(data::Dataset d) { return data::dataset_name(d); }
};
template <>
struct EnumNames<model::ModelKind>
    : ClosedSet<model::ModelKind, model::model_kind_name, model::ModelKind::kAgave,
                model::ModelKind::kVaeOnly, model::ModelKind::kPixelCnnOnly> {};
template <>
struct EnumNames<model::PixelCnnConditioning>
    : ClosedSet<model::PixelCnnConditioning, model::pixelcnn_conditioning_name,
                model::PixelCnnConditioning::kPerLayer, model::PixelCnnConditioning::kShared> {};
template <>
struct EnumNames<trainer::PhaseKind>
    : ClosedSet<trainer::PhaseKind, trainer::phase_name, trainer::PhaseKind::kPretrainVae,
                trainer::PhaseKind::kPretrainPixelCnn, trainer::PhaseKind::kJoint,
                trainer::PhaseKind::kNoAux> {};
template <>
struct EnumNames<trainer::LossTerm>
    : ClosedSet<trainer::LossTerm, trainer::loss_term_name, trainer::LossTerm::kPixel,
                trainer::LossTerm::kAux, trainer::LossTerm::kKl> {};
template <>
struct EnumNames<trainer::PretrainSchedule>
    : ClosedSet<trainer::PretrainSchedule, trainer::pretrain_schedule_name,
                trainer::PretrainSchedule::kSequential, trainer::PretrainSchedule::kParallel> {};
template <>
struct EnumNames<trainer::OptimizerKind>
    : ClosedSet<trainer::OptimizerKind, trainer::optimizer_name, trainer::OptimizerKind::kAdamax> {
};
template <>
struct EnumNames<trainer::Precision>
    : ClosedSet<trainer::Precision, trainer::precision_name, trainer::Precision::kAuto,
                trainer::Precision::kFp32, trainer::Precision::kBf16> {};
template <>
struct EnumNames<monitoring::ProgressMode>
    : ClosedSet<monitoring::ProgressMode, monitoring::progress_mode_name,
                monitoring::ProgressMode::kAuto, monitoring::ProgressMode::kBar,
                monitoring::ProgressMode::kPlain, monitoring::ProgressMode::kOff> {};
template <>
struct EnumNames<cluster::Backend>
    : ClosedSet<cluster::Backend, cluster::backend_name, cluster::Backend::kAuto,
                cluster::Backend::kMpi, cluster::Backend::kNccl> {};
template <>
struct EnumNames<cluster::Overlap>
    : ClosedSet<cluster::Overlap, cluster::overlap_name, cluster::Overlap::kAuto,
                cluster::Overlap::kOn, cluster::Overlap::kOff> {};

// "a, b, c": the names of a closed set, in its order.
template <class E>
std::vector<std::string> names_of() {
  std::vector<std::string> out;
  for (E v : EnumNames<E>::values) out.emplace_back(EnumNames<E>::name(v));
  return out;
}

// ---- ranges --------------------------------------------------------------------------------
// Generous: they catch typos and hostile files, not experiments.

constexpr double kBillion = 1e9;
constexpr double kInt64Max = 9223372036854775807.0;
constexpr NumericRange kSteps{1, kBillion};
constexpr NumericRange kEveryNSteps{0, kBillion};
constexpr NumericRange kImages{0, kBillion};  // 0 = all
constexpr NumericRange kBatch{1, 65536};
constexpr NumericRange kLambda{0, 1000};
constexpr NumericRange kFreeBits{0, 100};
constexpr NumericRange kFraction{0, 1, false, true};  // [0, 1)
constexpr NumericRange kChannels{1, 4096};

// ---- the tables, section by section --------------------------------------------------------

template <>
struct Table<RunOptions> {
  static constexpr const char* kName = "run";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Key("name", "the run's folder under output_dir: non-empty, no '/'"), o.name);
    v(Key("output_dir", "where runs land: <output_dir>/<name>[/<sweep point>]"), o.output_dir);
    v(Num("seed", {0, kInt64Max}, "the run's random seed"), o.seed);
  }
};

template <>
struct Table<data::DataOptions> {
  static constexpr const char* kName = "data";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Key("dataset", "the data set, which fixes the image shape"), o.dataset);
    v(Key("source", "raw files converted to shards on first use")
          .derived_from("per data set: data/cifar10 or /usr/share/datasets/fashion-mnist"),
      o.source);
    v(Key("shards", "HDF5 shard folder").derived_from("data-cache/<dataset>"), o.shards);
    v(Num("images_per_shard", {1, 1e7}, "images per shard file of a conversion"),
      o.images_per_shard);
    v(Num("prefetch_batches", {1, 1024}, "batches the loader thread keeps ready"),
      o.prefetch_batches);
    v(Key("shuffle", "shuffle the training split every epoch"), o.shuffle);
    v(NotAKey{"compression", "agave_data convert's --gzip; converted shards are raw"},
      o.compression);
    v(Key("verify_checksums", "hash each shard once before training on it"), o.verify_checksums);
  }
};

template <>
struct Table<model::VaeOptions> {
  static constexpr const char* kName = "vae";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Num("depth", {1, 64}, "stochastic layers"), o.depth());
    v(Num("width", kChannels, "hidden channels"), o.width());
    v(Num("latent_channels", {1, 1024}, "channels per latent layer"), o.latent_channels());
    v(Num("latent_resolution", {1, 4096}, "image size / 2^k, k >= 1")
          .derived_from("the image size / 2"),
      o.latent_resolution());
    v(Num("free_bits", kFreeBits, "nats per channel per layer (kl_min); 0 = off"), o.free_bits());
    v(Num("iaf_steps", {0, 64}, "inverse autoregressive flow steps"), o.iaf_steps());
  }
};

template <>
struct Table<model::PixelCnnOptions> {
  static constexpr const char* kName = "pixelcnn";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Num("nr_resnet", {1, 64}, "gated resnets per block"), o.nr_resnet());
    v(Num("nr_filters", kChannels, "channels"), o.nr_filters());
    v(Num("nr_logistic_mix", {1, 100}, "mixture components"), o.nr_logistic_mix());
    v(Num("dropout", kFraction, "dropout rate"), o.dropout());
    v(Key("conditioning", "how f(z) reaches the gated resnets"), o.conditioning());
  }
};

template <>
struct Table<model::AgaveOptions> {
  static constexpr const char* kName = "model";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Key("kind", "AGAVE or one of the paper's Table 1 baselines"), o.kind());
    v(NotAKey{"image_channels", "set by data.dataset"}, o.image_channels());
    v(NotAKey{"image_size", "set by data.dataset"}, o.image_size());
    v(Key("vae", "the VAE"), o.vae());
    v(Key("pixelcnn", "the conditional PixelCNN++"), o.pixelcnn());
    v(NotAKey{"aux", "its own section, aux"}, o.aux());
  }
};

template <>
struct Table<model::AuxOptions> {
  static constexpr const char* kName = "aux";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Num("resolution", {1, 4096}, "a divisor of the image size").derived_from("the image size"),
      o.resolution());
    v(Num("color_bins", {2, 256}, "a divisor of 256"), o.color_bins());
  }
};

template <>
struct Table<trainer::LossOptions> {
  static constexpr const char* kName = "loss";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Num("lambda", kLambda, "weight of the KL term"), o.lambda);
  }
};

// One element of train.phases; keys equal to their default are left out when written.
template <>
struct Table<trainer::PhaseOptions> {
  static constexpr const char* kName = "phases[]";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Key("name", "what the phase trains").must(), o.kind);
    v(Num("steps", kSteps, "the number of steps of this phase").must(), o.steps);
    v(Num("lambda", kLambda, "the phase's KL weight; default loss.lambda (no_aux: 1)"), o.lambda);
    v(Num("free_bits", kFreeBits, "default model.vae.free_bits (no_aux: 0)"), o.free_bits);
    v(Key("conditioned", "false: the PixelCNN without f(z) (pretrain_pixelcnn only)"),
      o.conditioned);
    v(Key("terms", "the loss terms; default the kind's"), o.terms);
  }
};

template <>
struct Table<trainer::OptimizerOptions> {
  static constexpr const char* kName = "optimizer";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Key("name", "the optimizer"), o.kind);
    v(Num("lr", {0, 1, true, false}, "learning rate"), o.lr);
    v(Num("beta1", kFraction, "first moment decay"), o.beta1);
    v(Num("beta2", kFraction, "second moment decay"), o.beta2);
    v(Num("eps", {0, 1, true, false}, "denominator epsilon"), o.eps);
  }
};

template <>
struct Table<trainer::TrainOptions> {
  static constexpr const char* kName = "train";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Num("batch_size", kBatch, "global batch, split evenly over a run's ranks"), o.batch_size);
    v(Num("steps", kSteps, "total steps; required without phases; on the command line, scales them")
          .derived_from("the sum of the phases"),
      o.steps);
    v(Key("phases", "the schedule: a list of {name, steps}").derived_from("one joint phase"),
      o.phases);
    v(Key("pretrain", "how the two pretraining phases run"), o.pretrain);
    v(Num("pretrain_vae_ranks", {0, 65536}, "pretrain: parallel: the VAE's ranks; 0 = half"),
      o.pretrain_vae_ranks);
    v(Key("optimizer", "the optimizer"), o.optimizer);
    v(Num("grad_clip", {0, 1e6}, "max global gradient norm; 0 = off"), o.grad_clip);
    v(Num("ema_decay", kFraction, "Polyak averaging of the weights"), o.ema_decay);
    v(Key("ema_warmup", "decay min(ema_decay, (1 + t) / (10 + t))"), o.ema_warmup);
    v(Key("precision", "the forward pass's arithmetic"), o.precision);
    v(Num("max_nonfinite_steps", {1, 1e6}, "consecutive skipped steps before aborting"),
      o.max_nonfinite_steps);
  }
};

template <>
struct Table<trainer::EvalOptions> {
  static constexpr const char* kName = "eval";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Num("every", kEveryNSteps, "steps between evaluations; 0 = at the end only"), o.every);
    v(Key("at_start", "also evaluate the initial model"), o.at_start);
    v(Num("importance_samples", {1, 100000}, "K of the importance-weighted bound"),
      o.importance_samples);
    v(Num("subset", kImages, "test images of periodic evaluations; 0 = all"), o.subset);
    v(Num("batch_size", kBatch, "evaluation batch"), o.batch_size);
    v(Key("use_ema", "evaluate the EMA weights"), o.use_ema);
    v(Num("sample_images", {0, 64}, "rows of the picture sheets; 0 = none"), o.sample_images);
    v(Num("final_subset", kImages, "test images of the final evaluation; 0 = all"), o.final_subset);
    v(Num("samples_per_latent", {1, 64}, "PixelCNN samples per f(z)"), o.samples_per_latent);
  }
};

template <>
struct Table<trainer::CheckpointOptions> {
  static constexpr const char* kName = "checkpoint";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Key("dir", "checkpoint folder").derived_from("<run output>/checkpoints"), o.dir);
    v(Num("every", kEveryNSteps, "steps between checkpoints; 0 = at the end only"), o.every);
    v(Num("keep", {1, 1000}, "newest complete checkpoints kept"), o.keep);
  }
};

template <>
struct Table<monitoring::MonitoringOptions> {
  static constexpr const char* kName = "monitoring";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Key("prometheus", "serve /metrics"), o.prometheus);
    v(Key("bind", "the address /metrics listens on"), o.bind);
    v(Num("port", {0, 65535}, "0: a free port the kernel picks"), o.port);
    v(Key("next_free_port", "take the next free port when port is in use"), o.next_free_port);
    v(Key("every_rank", "an exporter per rank"), o.every_rank);
    v(Num("log_every", {1, kBillion}, "steps between metric log lines"), o.log_every);
    v(Key("jsonl", "write metrics.jsonl"), o.jsonl);
    v(Key("progress", "how progress shows"), o.progress);
    v(Num("linger_seconds", {0, 3600}, "keep /metrics up after the run"), o.linger_seconds);
    v(Num("profile_steps", {0, 1000}, "steps profiled on rank 0"), o.profile_steps);
  }
};

template <>
struct Table<cluster::ClusterOptions> {
  static constexpr const char* kName = "cluster";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Key("backend", "the all-reduce backend"), o.backend);
    v(Num("threads_per_rank", {0, 1024}, "LibTorch threads; 0 = cores / local ranks"),
      o.threads_per_rank);
    v(Num("timeout_seconds", {0, 604800, true, false}, "a longer collective fails the job"),
      o.timeout_seconds);
    v(Num("bucket_mb", {0, 4096, true, false}, "gradient bucket size"), o.bucket_mb);
    v(Key("overlap", "all-reduce buckets during backward"), o.overlap);
  }
};

template <>
struct Table<SweepOptions> {
  static constexpr const char* kName = "sweep";
  template <class O, class V>
  static void visit(O& o, V&& v) {
    v(Num("ranks_per_run", {0, 1048576}, "ranks that train one run; 0 = all"), o.ranks_per_run);
    v(Key("grid", "config key paths to lists of values").derived_from("none"), o.grid);
  }
};

// The sections of a config file, in file order. `aux` is a section of its own but lives in
// the model's options.
template <>
struct Table<Config> {
  static constexpr const char* kName = "";
  template <class O, class V>
  static void visit(O& c, V&& v) {
    v(Key("run", "the run's name, folder and seed"), c.run);
    v(Key("data", "the data set"), c.data);
    v(Key("model", "the model"), c.model);
    v(Key("aux", "the auxiliary image y"), c.model.aux());
    v(Key("loss", "the training loss"), c.loss);
    v(Key("train", "training"), c.train);
    v(Key("eval", "evaluation"), c.eval);
    v(Key("checkpoint", "checkpoints"), c.checkpoint);
    v(Key("monitoring", "metrics and progress"), c.monitoring);
    v(Key("cluster", "ranks and communication"), c.cluster);
    v(Key("sweep", "many runs from one file"), c.sweep);
  }
};

// ---- the keys as a list (docs check, tests) ------------------------------------------------

// A key of the whole table: its dotted path (list elements as "train.phases[].steps"), row
// and default as --print-config writes it ("" for sections, lists and unset optionals).
struct KeyInfo {
  std::string path;
  Key row;
  std::optional<NumericRange> range;  // numbers
  bool integer = false;
  bool section = false;              // a mapping of keys (model.vae, train.optimizer)
  std::vector<std::string> allowed;  // closed sets: the names
  std::string default_value;
};

// Every key of every table, in table order, sections before their keys.
std::vector<KeyInfo> config_keys();

}  // namespace agave::launcher
