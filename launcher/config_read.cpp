#include "launcher/config_read.h"

#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "io/bounds.h"
#include "launcher/config_table.h"
#include "launcher/sweep_plan.h"
#include "trainer/parallel_pretraining.h"

namespace agave::launcher {
namespace {

// The (name, value) pairs of a closed set, for YamlReader::read_enum.
template <class E>
std::vector<std::pair<std::string, E>> named() {
  std::vector<std::pair<std::string, E>> out;
  for (E v : EnumNames<E>::values) out.emplace_back(EnumNames<E>::name(v), v);
  return out;
}

// "name, steps": the keys a list element must give.
template <class S>
std::string required_keys() {
  std::vector<std::string> out;
  S item{};
  Table<S>::visit(item, [&](const auto& row, auto&) {
    if constexpr (!std::is_same_v<std::decay_t<decltype(row)>, NotAKey>) {
      if (row.required) out.emplace_back(row.name);
    }
  });
  return join(out, ", ");
}

// Reads every row of a table from one section: type, range or allowed names, unknown keys.
class KeyReader {
 public:
  explicit KeyReader(YamlReader& r) : r_(r) {}

  template <class Row, class T>
  void operator()(const Row& row, T& field) {
    if (row.required && !r_.has(row.name)) {
      if constexpr (std::is_enum_v<T>) {
        r_.fail(row.name, "required: one of " + join(names_of<T>(), ", "));
      } else {
        r_.fail(row.name, std::string("required: ") + row.doc);
      }
    }
    read(row, field);
  }
  template <class T>
  void operator()(const NotAKey&, T&) {}

 private:
  void read(const Num& k, int64_t& f) { r_.read(k.name, f, k.range); }
  void read(const Num& k, double& f) { r_.read(k.name, f, k.range); }
  void read(const Num& k, std::optional<double>& f) {
    const bool given = r_.has(k.name);
    double v = 0;
    r_.read(k.name, v, k.range);
    if (given) f = v;
  }
  void read(const Key& k, bool& f) { r_.read(k.name, f); }
  void read(const Key& k, std::string& f) { r_.read(k.name, f); }
  template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
  void read(const Key& k, E& f) {
    r_.read_enum(k.name, f, named<E>());
  }
  template <class S, std::enable_if_t<has_table<S>::value, int> = 0>
  void read(const Key& k, S& section) {
    read_section(r_.child(k.name), section);
  }
  template <class L, std::enable_if_t<is_table_list<L>::value, int> = 0>
  void read(const Key& k, L& list) {
    const YAML::Node items = r_.raw(k.name);
    if (!items || items.IsNull()) return;
    if (!items.IsSequence() || items.size() == 0) {
      r_.fail(k.name,
              "expected a non-empty list of {" + required_keys<typename L::value_type>() + "}");
    }
    list.clear();
    for (size_t i = 0; i < items.size(); ++i) {
      typename L::value_type item{};
      read_section(
          YamlReader(items[i], r_.key_path(k.name) + "[" + std::to_string(i) + "]", r_.origins()),
          item);
      list.push_back(item);
    }
  }
  void read(const Key& k, std::optional<model::LossSelection>& terms);
  void read(const Key& k, std::vector<SweepAxis>& grid);

 public:
  template <class S>
  static void read_section(YamlReader r, S& section) {
    KeyReader keys(r);
    Table<S>::visit(section, keys);
    r.finish();
  }

 private:
  YamlReader& r_;
};

// A phase's terms: a non-empty list of loss term names.
void KeyReader::read(const Key& k, std::optional<model::LossSelection>& terms) {
  const YAML::Node list = r_.raw(k.name);
  if (!list) return;
  const std::string allowed = join(names_of<trainer::LossTerm>(), ", ");
  if (!list.IsSequence() || list.size() == 0) {
    r_.fail(k.name, "expected a non-empty list of " + allowed);
  }
  model::LossSelection on{false, false, false};
  for (const auto& t : list) {
    const std::string name = t.IsScalar() ? t.Scalar() : "";
    bool known = false;
    for (trainer::LossTerm term : EnumNames<trainer::LossTerm>::values) {
      if (name != trainer::loss_term_name(term)) continue;
      trainer::selects(on, term) = true;
      known = true;
    }
    if (!known) r_.fail(k.name, "'" + name + "' is not a loss term; allowed: " + allowed);
  }
  terms = on;
}

// The sweep grid: config key paths to non-empty lists of scalars, refused above
// kMaxSweepPoints before anything is expanded (the product is computed without overflow).
void KeyReader::read(const Key& k, std::vector<SweepAxis>& grid) {
  const YAML::Node node = r_.raw(k.name);
  grid.clear();
  if (!node || node.IsNull()) return;
  const std::string at = k.name;
  if (!node.IsMap()) r_.fail(k.name, "expected a mapping of config keys to lists of values");
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    if (key.rfind(Table<SweepOptions>::kName, 0) == 0) {
      r_.fail_node(kv.first, at + "." + key, "the sweep cannot sweep itself");
    }
    if (!kv.second.IsSequence() || kv.second.size() == 0) {
      r_.fail_node(kv.second, at + "." + key, "expected a non-empty list of values");
    }
    SweepAxis axis{key, {}};
    for (const auto& v : kv.second) {
      if (!v.IsScalar()) r_.fail_node(v, at + "." + key, "sweep values must be scalars");
      axis.values.push_back(v);
    }
    grid.push_back(axis);
  }
  uint64_t points = 1;
  std::string factors;
  for (const auto& axis : grid) {
    factors += (factors.empty() ? "" : " x ") + std::to_string(axis.values.size());
    const auto next =
        io::checked_mul(points, axis.values.size(), static_cast<uint64_t>(kMaxSweepPoints));
    points = next ? *next : static_cast<uint64_t>(kMaxSweepPoints) + 1;
  }
  if (points > static_cast<uint64_t>(kMaxSweepPoints)) {
    r_.fail(k.name, "has " + factors + " points, more than the " + std::to_string(kMaxSweepPoints) +
                        " a sweep may have; split it into several configs");
  }
}

// ---- checks across keys --------------------------------------------------------------------

// Where the checks point: the section at a dotted path ("train.phases[1]") of the tree read.
class Where {
 public:
  Where(const YAML::Node& root, const Origins& origins) : root_(root), origins_(origins) {}

  YamlReader section(const std::string& path) const {
    YAML::Node node = root_;
    if (path.empty()) return YamlReader(node, path, origins_);
    std::string part;
    for (size_t i = 0; i <= path.size(); ++i) {
      if (i < path.size() && path[i] != '.') {
        part += path[i];
        continue;
      }
      node.reset(step(node, part));
      part.clear();
    }
    return YamlReader(node, path, origins_);
  }
  [[noreturn]] void fail(const std::string& section_path, const char* key,
                         const std::string& message) const {
    section(section_path).fail(key, message);
  }
  // Whether the file (or an override, or the sweep point) gives `key` in `section_path`.
  bool given(const std::string& section_path, const char* key) const {
    return section(section_path).has(key);
  }
  // Whether the command line (or a sweep point) gives `path` rather than the file.
  bool overridden(const std::string& path) const { return origins_.overridden(path); }

 private:
  // "phases[1]": the list's element.
  static YAML::Node step(const YAML::Node& node, const std::string& part) {
    const auto bracket = part.find('[');
    const YAML::Node& parent = node;  // const: looking up never inserts
    if (bracket == std::string::npos) return parent.IsMap() ? parent[part] : YAML::Node();
    const YAML::Node list = parent.IsMap() ? parent[part.substr(0, bracket)] : YAML::Node();
    const size_t index = std::stoul(part.substr(bracket + 1));
    return list.IsSequence() ? list[index] : YAML::Node();
  }

  const YAML::Node& root_;
  const Origins& origins_;
};

bool divides(int64_t d, int64_t n) { return d > 0 && n % d == 0; }
bool power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

std::string divisors_of(int64_t n) {
  std::vector<std::string> out;
  for (int64_t d = 1; d <= n; ++d)
    if (n % d == 0) out.push_back(std::to_string(d));
  return join(out, ", ");
}

// The defaults that follow data.dataset, for the keys left out: the image shape, the data
// set's folders, latents at half the image size and y = x's size. CIFAR-10 lives inside the
// project (git-ignored), where `agave_data fetch cifar10` puts it; Fashion-MNIST where
// Debian's dataset-fashion-mnist installs it.
void apply_derived_defaults(const Where& at, Config& c) {
  const data::ImageShape shape = data::image_shape(c.data.dataset);
  c.model.image_channels(shape.channels).image_size(shape.height);
  if (!at.given("data", "source")) {
    c.data.source = c.data.dataset == data::Dataset::kCifar10 ? "data/cifar10"
                                                              : "/usr/share/datasets/fashion-mnist";
  }
  if (!at.given("data", "shards")) {
    c.data.shards = std::string("data-cache/") + data::dataset_name(c.data.dataset);
  }
  if (!at.given("model.vae", "latent_resolution")) {
    c.model.vae().latent_resolution(shape.height / 2);
  }
  if (!at.given("aux", "resolution")) c.model.aux().resolution(shape.height);
}

void check_run_name(const Where& at, const RunOptions& o) {
  if (o.name.find('/') != std::string::npos) {
    at.fail("run", "name", "must be a non-empty name without '/', got '" + o.name + "'");
  }
}

void check_shapes(const Where& at, const model::AgaveOptions& o) {
  const int64_t size = o.image_size(), lr = o.vae().latent_resolution();
  if (!(divides(lr, size) && power_of_two(size / lr) && lr < size)) {
    at.fail("model.vae", "latent_resolution",
            "must be the image size " + std::to_string(size) +
                " divided by a power of two >= 2, got " + std::to_string(lr));
  }
  if (!divides(o.aux().resolution(), size)) {
    at.fail("aux", "resolution",
            "must divide the image size " + std::to_string(size) + " (allowed: " +
                divisors_of(size) + "), got " + std::to_string(o.aux().resolution()));
  }
  if (!divides(o.aux().color_bins(), 256)) {
    at.fail("aux", "color_bins",
            "must divide 256 and be >= 2 (allowed: 2, 4, 8, 16, 32, 64, 128, 256), got " +
                std::to_string(o.aux().color_bins()));
  }
}

// The phases scaled to `steps` in proportion, each at least one step, the rounding remainder
// to the last phase (taken back from the longest earlier phases should the minimum of one
// step leave it none). Scaling keeps every phase of the schedule, so a short trial still runs
// each kind of step; truncating at `steps` would train only the first phase.
std::vector<int64_t> scaled_steps(const std::vector<trainer::PhaseOptions>& phases, int64_t total,
                                  int64_t steps) {
  std::vector<int64_t> out;
  int64_t used = 0;
  for (size_t i = 0; i + 1 < phases.size(); ++i) {
    const auto share =
        static_cast<int64_t>(static_cast<double>(phases[i].steps) * static_cast<double>(steps) /
                             static_cast<double>(total));
    out.push_back(std::max<int64_t>(1, share));
    used += out.back();
  }
  out.push_back(steps - used);
  while (out.back() < 1) {
    auto longest = std::max_element(out.begin(), out.end() - 1);
    --*longest;
    ++out.back();
  }
  return out;
}

std::string describe_scaling(const std::vector<trainer::PhaseOptions>& phases,
                             const std::vector<int64_t>& before, int64_t total) {
  int64_t steps = 0;
  std::string each;
  for (size_t i = 0; i < phases.size(); ++i) {
    steps += phases[i].steps;
    each += std::string(i ? ", " : "") + trainer::phase_name(phases[i].kind) + " " +
            std::to_string(before[i]) + " -> " + std::to_string(phases[i].steps);
  }
  return "train.steps = " + std::to_string(steps) + " scales the phases (" + std::to_string(total) +
         " steps): " + each;
}

// train.steps and train.phases: phases alone give the steps; steps alone one joint phase.
// When both are given and disagree, the one given on the command line (or by a sweep point)
// decides: train.steps (--steps N) scales the phases, for a quick trial of a whole schedule;
// train.phases replaces the file's steps (a config saved by --print-config pins the steps it
// derived). In the file alone, a disagreement is a mistake.
void resolve_schedule(const Where& at, trainer::TrainOptions& o, std::vector<std::string>* notes) {
  const bool has_steps = at.given("train", "steps");
  if (o.phases.empty()) {
    if (!has_steps) at.fail("train", "steps", "required (or a list of phases)");
    o.phases.push_back({trainer::PhaseKind::kJoint, o.steps});
    return;
  }
  int64_t total = 0;
  for (const auto& p : o.phases) total += p.steps;
  const bool steps_decide = at.overridden("train.steps");
  if (!has_steps || o.steps == total || (!steps_decide && at.overridden("train.phases"))) {
    o.steps = total;
    return;
  }
  if (!steps_decide) {
    at.fail("train", "steps",
            "is " + std::to_string(o.steps) + " but the phases add up to " + std::to_string(total) +
                "; give one or make them agree (--steps N on the command line scales the phases)");
  }
  if (o.steps < static_cast<int64_t>(o.phases.size())) {
    at.fail("train", "steps",
            "is " + std::to_string(o.steps) + ", fewer than the " +
                std::to_string(o.phases.size()) + " phases it scales (one step each at least)");
  }
  std::vector<int64_t> before;
  for (const auto& p : o.phases) before.push_back(p.steps);
  const auto after = scaled_steps(o.phases, total, o.steps);
  for (size_t i = 0; i < o.phases.size(); ++i) o.phases[i].steps = after[i];
  if (notes) notes->push_back(describe_scaling(o.phases, before, total));
}

// conditioned: false trains the PixelCNN without f(z); only the PixelCNN's pretraining has no
// use for the VAE.
void check_phases(const Where& at, const trainer::TrainOptions& o) {
  for (size_t i = 0; i < o.phases.size(); ++i) {
    const auto& p = o.phases[i];
    if (!p.conditioned && p.kind != trainer::PhaseKind::kPretrainPixelCnn) {
      at.fail("train.phases[" + std::to_string(i) + "]", "conditioned",
              std::string("false is for pretrain_pixelcnn phases only, not ") +
                  trainer::phase_name(p.kind));
    }
  }
}

void check_pretrain(const Where& at, const trainer::TrainOptions& o) {
  const bool parallel = o.pretrain == trainer::PretrainSchedule::kParallel;
  if (o.pretrain_vae_ranks > 0 && !parallel) {
    at.fail("train", "pretrain_vae_ranks", "is for train.pretrain: parallel only");
  }
  if (!parallel) return;
  try {
    trainer::check_parallel_phases(o.phases);
  } catch (const std::invalid_argument& e) {
    at.fail("train", "pretrain", e.what());
  }
}

// The baselines of Table 1 have one part each: one joint phase, and the VAE alone models x
// itself with its decoder.
void check_baseline(const Where& at, const Config& c) {
  const auto kind = c.model.kind();
  if (kind == model::ModelKind::kAgave) return;
  const std::string name = model::model_kind_name(kind);
  for (const auto& p : c.train.phases) {
    if (p.kind != trainer::PhaseKind::kJoint) {
      at.fail("train", "phases",
              std::string("phase '") + trainer::phase_name(p.kind) +
                  "' has no meaning for model.kind " + name +
                  ", which trains in one joint phase (give train.steps)");
    }
  }
  const auto& aux = c.model.aux();
  if (kind == model::ModelKind::kVaeOnly &&
      (aux.resolution() != c.model.image_size() || aux.color_bins() != 256)) {
    at.fail("aux", "resolution",
            "model.kind vae_only models x with the VAE decoder: aux must be x itself "
            "(resolution " +
                std::to_string(c.model.image_size()) + ", color_bins 256), got " +
                std::to_string(aux.resolution()) + " and " + std::to_string(aux.color_bins()));
  }
}

void check_batch_split(const Where& at, const Config& c) {
  if (c.sweep.ranks_per_run == 0) return;  // every rank of the job: checked by plan_sweep
  const std::string problem = batch_split_problem(c.train.batch_size, c.sweep.ranks_per_run);
  if (!problem.empty()) {
    at.fail("train", "batch_size",
            "the global batch " + std::to_string(c.train.batch_size) + " " + problem +
                " (sweep.ranks_per_run = " + std::to_string(c.sweep.ranks_per_run) + ")");
  }
}

}  // namespace

Config read_config(const YAML::Node& root, const Origins& origins,
                   std::vector<std::string>* notes) {
  Config c;
  KeyReader::read_section(YamlReader(root, "", origins), c);
  const Where at(root, origins);
  apply_derived_defaults(at, c);
  check_run_name(at, c.run);
  check_shapes(at, c.model);
  resolve_schedule(at, c.train, notes);
  check_phases(at, c.train);
  check_pretrain(at, c.train);
  check_baseline(at, c);
  check_batch_split(at, c);
  return c;
}

}  // namespace agave::launcher
