#include "launcher/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <initializer_list>
#include <set>
#include <stdexcept>

#include "launcher/config_error.h"
#include "tests/common/test_files.h"
#include "trainer/phase.h"

namespace agave::launcher {
namespace {

using agave::testing::TempDir;

// A small valid config; tests change one thing at a time.
const char* kBase = R"(run:
  name: t
  output_dir: out
data:
  dataset: fashion_mnist
model:
  vae: {depth: 2, width: 16, latent_channels: 4, latent_resolution: 7}
  pixelcnn: {nr_resnet: 1, nr_filters: 16, nr_logistic_mix: 3, dropout: 0.0}
aux:
  resolution: 14
  color_bins: 32
loss:
  lambda: 2
train:
  batch_size: 32
  phases:
    - {name: pretrain_vae, steps: 10}
    - {name: joint, steps: 20}
)";

struct LoadRuns : ::testing::Test {
  TempDir dir;
  std::vector<RunSpec> load(const std::string& yaml, std::vector<std::string> sets = {}) {
    return load_runs(dir.write("c.yaml", yaml), sets);
  }
  // Expects a ConfigError whose one-line message contains every piece.
  void expect_error(const std::string& yaml, std::initializer_list<std::string> pieces,
                    std::vector<std::string> sets = {}) {
    try {
      load(yaml, sets);
      ADD_FAILURE() << "no error for:\n" << yaml;
    } catch (const ConfigError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      for (const auto& p : pieces)
        EXPECT_NE(msg.find(p), std::string::npos) << msg << "\nmissing: " << p;
    }
  }
  std::string replace(std::string text, const std::string& from, const std::string& to) {
    const auto pos = text.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    return text.replace(pos, from.size(), to);
  }
};

// docs/metrics.md: port 0 lets the kernel pick a free port (the run prints its URL).
TEST_F(LoadRuns, MonitoringPortZeroIsAccepted) {
  const auto runs = load(std::string(kBase) + "monitoring: {port: 0}\n");
  EXPECT_EQ(runs.at(0).config.monitoring.port, 0);
}

TEST_F(LoadRuns, ParsesEverySectionIntoTypedOptions) {
  const auto runs = load(kBase);
  ASSERT_EQ(runs.size(), 1u);
  const Config& c = runs[0].config;
  EXPECT_EQ(runs[0].name, "t");
  EXPECT_EQ(runs[0].output_dir, "out/t");
  EXPECT_EQ(c.data.dataset, data::Dataset::kFashionMnist);
  EXPECT_EQ(c.model.image_channels(), 1);
  EXPECT_EQ(c.model.image_size(), 28);
  EXPECT_EQ(c.model.vae().depth(), 2);
  EXPECT_EQ(c.model.vae().latent_resolution(), 7);
  EXPECT_EQ(c.model.pixelcnn().nr_filters(), 16);
  EXPECT_EQ(c.model.pixelcnn().nr_logistic_mix(), 3);
  EXPECT_DOUBLE_EQ(c.model.pixelcnn().dropout(), 0.0);
  EXPECT_EQ(c.model.aux().resolution(), 14);
  EXPECT_EQ(c.model.aux().color_bins(), 32);
  EXPECT_DOUBLE_EQ(c.loss.lambda, 2.0);
  EXPECT_EQ(c.train.batch_size, 32);
  ASSERT_EQ(c.train.phases.size(), 2u);
  EXPECT_EQ(c.train.phases[0].kind, trainer::PhaseKind::kPretrainVae);
  EXPECT_EQ(c.train.phases[1].steps, 20);
  EXPECT_EQ(c.train.steps, 30);
  // Defaults that were not written.
  EXPECT_EQ(c.train.optimizer.kind, trainer::OptimizerKind::kAdamax);
  EXPECT_DOUBLE_EQ(c.train.optimizer.lr, 0.002);
  EXPECT_EQ(c.eval.importance_samples, 150);
  EXPECT_EQ(c.monitoring.bind, "127.0.0.1");
  EXPECT_EQ(c.data.source, "/usr/share/datasets/fashion-mnist");
}

TEST_F(LoadRuns, Cifar10SetsShapeAndDefaultSource) {
  const auto runs = load(replace(replace(replace(kBase, "fashion_mnist", "cifar10"),
                                         "latent_resolution: 7", "latent_resolution: 16"),
                                 "resolution: 14", "resolution: 8"));
  const Config& c = runs[0].config;
  EXPECT_EQ(c.model.image_channels(), 3);
  EXPECT_EQ(c.model.image_size(), 32);
  EXPECT_EQ(c.data.source, "data/cifar10");
  EXPECT_EQ(c.data.shards, "data-cache/cifar10");
}

TEST_F(LoadRuns, StepsWithoutPhasesMeansOneJointPhase) {
  const auto runs = load(replace(kBase, R"(  phases:
    - {name: pretrain_vae, steps: 10}
    - {name: joint, steps: 20}
)",
                                 "  steps: 7\n"));
  ASSERT_EQ(runs[0].config.train.phases.size(), 1u);
  EXPECT_EQ(runs[0].config.train.phases[0].kind, trainer::PhaseKind::kJoint);
  EXPECT_EQ(runs[0].config.train.phases[0].steps, 7);
}

TEST_F(LoadRuns, ResolvedConfigRoundTrips) {
  const Config c = load(kBase)[0].config;
  TempDir d2;
  const std::string text = to_yaml_string(c);
  const Config again = load_runs(d2.write("r.yaml", text), {})[0].config;
  EXPECT_EQ(to_yaml_string(again), text);
  EXPECT_NE(text.find("lambda: 2"), std::string::npos) << text;
  EXPECT_NE(text.find("color_bins: 32"), std::string::npos) << text;
}

// Issue 30: every shipped config and every point of its sweep prints (--print-config,
// <run>/config.yaml) as YAML that reads back to the same config and prints the same again.
TEST(ShippedConfigs, PrintedConfigsReadBackToTheSameConfig) {
  int checked = 0;
  for (const std::string folder : {"configs", "experiments"}) {
    for (const auto& entry :
         std::filesystem::directory_iterator(std::string(AGAVE_SOURCE_DIR) + "/" + folder)) {
      if (entry.path().extension() != ".yaml") continue;
      for (const auto& run : load_runs(entry.path().string(), {})) {
        SCOPED_TRACE(entry.path().string() + " " + run.name);
        const std::string text = to_yaml_string(run.config);
        const Config again = parse_config(YAML::Load(text), "printed.yaml");
        EXPECT_EQ(to_yaml_string(again), text);
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 20);
}

// Floats print as the shortest text that reads back exactly (yaml-cpp's own is 17 digits).
TEST_F(LoadRuns, PrintedFloatsAreShortest) {
  const std::string text = to_yaml_string(load(kBase)[0].config);
  EXPECT_NE(text.find("beta1: 0.9\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lr: 0.002\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("0000000"), std::string::npos) << text;
}

// ---- train.steps against train.phases (issue 30) --------------------------------------------

std::vector<int64_t> phase_steps(const Config& c) {
  std::vector<int64_t> out;
  for (const auto& p : c.train.phases) out.push_back(p.steps);
  return out;
}

// --set train.steps=N (agave_trainer --steps N) scales the phases to N: each at least one
// step, the rounding remainder to the last; one note says how.
TEST_F(LoadRuns, StepsOnTheCommandLineScaleThePhases) {
  const auto sweep = load_sweep(dir.write("c.yaml", kBase), {"train.steps=6"});
  const Config& c = sweep.first().config;
  EXPECT_EQ(c.train.steps, 6);
  EXPECT_EQ(phase_steps(c), (std::vector<int64_t>{2, 4}));
  ASSERT_EQ(sweep.notes().size(), 1u);
  EXPECT_EQ(sweep.notes()[0],
            "train.steps = 6 scales the phases (30 steps): pretrain_vae 10 -> 2, joint 20 -> 4");
  EXPECT_EQ(phase_steps(load(kBase, {"train.steps=7"})[0].config), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(phase_steps(load(kBase, {"train.steps=2"})[0].config), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(phase_steps(load(kBase, {"train.steps=300"})[0].config),
            (std::vector<int64_t>{100, 200}));
  // Steps that agree change nothing and say nothing.
  EXPECT_TRUE(load_sweep(dir.write("c.yaml", kBase), {"train.steps=30"}).notes().empty());
  expect_error(kBase, {"--set train.steps=1", "fewer than the 2 phases"}, {"train.steps=1"});
  // The minimum of one step is taken back from the longest earlier phase.
  const std::string three = replace(kBase, "    - {name: joint, steps: 20}\n",
                                    "    - {name: joint, steps: 1}\n    - {name: no_aux, "
                                    "steps: 1}\n");
  EXPECT_EQ(phase_steps(load(three, {"train.steps=3"})[0].config), (std::vector<int64_t>{1, 1, 1}));
}

// A config saved by --print-config pins train.steps; phases set on the command line replace
// it, while a file whose own steps and phases disagree is still refused.
TEST_F(LoadRuns, PhasesOnTheCommandLineReplaceASavedConfigsSteps) {
  const std::string saved = to_yaml_string(load(kBase)[0].config);
  ASSERT_NE(saved.find("steps: 30"), std::string::npos) << saved;
  const auto runs = load(saved, {"train.phases=[{name: pretrain_vae, steps: 3}, {name: joint, "
                                 "steps: 4}]"});
  EXPECT_EQ(runs[0].config.train.steps, 7);
  EXPECT_EQ(phase_steps(runs[0].config), (std::vector<int64_t>{3, 4}));
  // Both on the command line: steps scale the phases given.
  const auto both = load(saved, {"train.phases=[{name: joint, steps: 4}]", "train.steps=2"});
  EXPECT_EQ(phase_steps(both[0].config), (std::vector<int64_t>{2}));
  expect_error(replace(kBase, "  batch_size: 32\n", "  batch_size: 32\n  steps: 99\n"),
               {"train.steps", "99", "add up to 30", "--steps N"});
}

// ---- every validation error names where, the key and what is allowed ------------------------

TEST_F(LoadRuns, UnknownKeysListAllowedOnes) {
  expect_error(std::string(kBase) + "bogus: 1\n",
               {"c.yaml:19", "bogus", "unknown key", "allowed keys here", "sweep"});
  expect_error(replace(kBase, "lambda: 2", "lamda: 2"),
               {"c.yaml:13", "loss.lamda", "unknown key", "lambda"});
  expect_error(replace(kBase, "depth: 2", "depht: 2"),
               {"c.yaml:7", "model.vae.depht", "latent_channels"});
}

TEST_F(LoadRuns, WrongTypes) {
  expect_error(replace(kBase, "batch_size: 32", "batch_size: many"),
               {"c.yaml:15", "train.batch_size", "expected an integer", "'many'"});
  expect_error(replace(kBase, "batch_size: 32", "batch_size: 32.5"),
               {"train.batch_size", "expected an integer"});
  expect_error(replace(kBase, "lambda: 2", "lambda: [1, 2]"),
               {"c.yaml:13", "loss.lambda", "expected a number", "list"});
  expect_error(replace(kBase, "lambda: 2", "lambda: big"),
               {"loss.lambda", "expected a finite number"});
  expect_error(replace(kBase, "lambda: 2", "lambda: .nan"), {"loss.lambda", "finite"});
  expect_error(replace(kBase, "loss:\n  lambda: 2", "loss: 3"),
               {"c.yaml:12", "loss", "expected a mapping"});
  expect_error(std::string(kBase) + "eval: {use_ema: maybe}\n", {"eval.use_ema", "true or false"});
}

TEST_F(LoadRuns, ImpossibleValues) {
  expect_error(replace(kBase, "lambda: 2", "lambda: -1"),
               {"c.yaml:13", "loss.lambda", "[0, 1000]", "-1"});
  expect_error(
      replace(kBase, "color_bins: 32", "color_bins: 3"),
      {"c.yaml:11", "aux.color_bins", "must divide 256", "2, 4, 8, 16, 32, 64, 128, 256", "got 3"});
  expect_error(replace(kBase, "color_bins: 32", "color_bins: 512"), {"aux.color_bins", "512"});
  expect_error(replace(kBase, "color_bins: 32", "color_bins: 1"), {"aux.color_bins", "[2, 256]"});
  expect_error(replace(kBase, "resolution: 14", "resolution: 5"),
               {"c.yaml:10", "aux.resolution", "must divide the image size 28",
                "1, 2, 4, 7, 14, 28", "got 5"});
  expect_error(replace(kBase, "latent_resolution: 7", "latent_resolution: 5"),
               {"model.vae.latent_resolution", "power of two"});
  expect_error(replace(kBase, "dataset: fashion_mnist", "dataset: mnist"),
               {"c.yaml:5", "data.dataset", "'mnist'", "fashion_mnist, cifar10"});
  expect_error(replace(kBase, "dropout: 0.0", "dropout: 1.0"),
               {"model.pixelcnn.dropout", "[0, 1)"});
  expect_error(replace(kBase, "nr_filters: 16", "nr_filters: 0"),
               {"model.pixelcnn.nr_filters", "[1, 4096]"});
  expect_error(replace(kBase, "batch_size: 32", "batch_size: 0"),
               {"train.batch_size", "[1, 65536]"});
  expect_error(std::string(kBase) + "  optimizer: {lr: 0}\n", {"train.optimizer.lr", "(0, 1]"});
  expect_error(std::string(kBase) + "  optimizer: {name: sgd}\n",
               {"train.optimizer.name", "allowed: adamax"});
  expect_error(std::string(kBase) + "  precision: fp8\n", {"train.precision", "auto, fp32, bf16"});
  expect_error(std::string(kBase) + "monitoring: {port: 70000}\n",
               {"monitoring.port", "[0, 65535]"});
  expect_error(std::string(kBase) + "monitoring: {port: -1}\n", {"monitoring.port", "[0, 65535]"});
  expect_error(std::string(kBase) + "monitoring: {progress: fancy}\n",
               {"monitoring.progress", "auto, bar, plain, off"});
  expect_error(std::string(kBase) + "cluster: {backend: gloo}\n",
               {"cluster.backend", "auto, mpi, nccl"});
  expect_error(std::string(kBase) + "cluster: {timeout_seconds: 0}\n",
               {"cluster.timeout_seconds", "(0, 604800]"});
  expect_error(std::string(kBase) + "eval: {importance_samples: 0}\n",
               {"eval.importance_samples", "[1, 100000]"});
  expect_error(std::string(kBase) + "checkpoint: {keep: 0}\n", {"checkpoint.keep", "[1, 1000]"});
  expect_error(replace(kBase, "name: t", "name: a/b"), {"run.name", "without '/'"});
}

TEST_F(LoadRuns, PhaseErrors) {
  expect_error(replace(kBase, "name: joint", "name: finetune"),
               {"c.yaml:18", "train.phases[1].name", "'finetune'",
                "pretrain_vae, pretrain_pixelcnn, joint, no_aux"});
  expect_error(replace(kBase, "{name: joint, steps: 20}", "{name: joint}"),
               {"train.phases[1].steps", "required"});
  expect_error(replace(kBase, "{name: joint, steps: 20}", "{name: joint, steps: 0}"),
               {"train.phases[1].steps", "[1, 1000000000]"});
  expect_error(replace(kBase, "  batch_size: 32\n", "  batch_size: 32\n  steps: 99\n"),
               {"train.steps", "99", "add up to 30"});
  expect_error(replace(kBase, R"(  phases:
    - {name: pretrain_vae, steps: 10}
    - {name: joint, steps: 20}
)",
                       ""),
               {"train.steps", "required"});
}

// A phase may set its own λ, free bits and loss terms (issue 15); they round-trip through the
// resolved config, and bad values name the phase.
TEST_F(LoadRuns, PhasesMaySetLambdaFreeBitsAndTerms) {
  const auto runs =
      load(replace(kBase, "{name: joint, steps: 20}",
                   "{name: joint, steps: 20}\n    - {name: no_aux, steps: 5, lambda: 0.5, "
                   "free_bits: 0.25, terms: [pixel, kl]}"));
  ASSERT_EQ(runs.size(), 1u);
  const auto& phases = runs[0].config.train.phases;
  ASSERT_EQ(phases.size(), 3u);
  EXPECT_FALSE(phases[1].lambda.has_value());
  ASSERT_TRUE(phases[2].lambda && phases[2].free_bits && phases[2].terms);
  EXPECT_EQ(*phases[2].lambda, 0.5);
  EXPECT_EQ(*phases[2].free_bits, 0.25);
  EXPECT_TRUE(phases[2].terms->pixel && phases[2].terms->kl);
  EXPECT_FALSE(phases[2].terms->aux);
  const std::string resolved = to_yaml_string(runs[0].config);
  EXPECT_NE(resolved.find("lambda: 0.5"), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("terms: [pixel, kl]"), std::string::npos) << resolved;
  expect_error(
      replace(kBase, "{name: joint, steps: 20}", "{name: joint, steps: 20, terms: [pixel, y]}"),
      {"train.phases[1].terms", "'y'", "pixel, aux, kl"});
  expect_error(replace(kBase, "{name: joint, steps: 20}", "{name: joint, steps: 20, terms: []}"),
               {"train.phases[1].terms", "non-empty"});
  expect_error(replace(kBase, "{name: joint, steps: 20}", "{name: joint, steps: 20, lambda: -1}"),
               {"train.phases[1].lambda", "[0, 1000]"});
}

// train.pretrain (issue 28): sequential unless set; parallel needs both pretraining phases first,
// and round-trips through the resolved config with the PixelCNN phase's conditioned: false.
TEST_F(LoadRuns, PretrainScheduleAndUnconditionedPhases) {
  EXPECT_EQ(load(kBase)[0].config.train.pretrain, trainer::PretrainSchedule::kSequential);
  const std::string both = replace(kBase, "    - {name: joint, steps: 20}\n",
                                   "    - {name: pretrain_pixelcnn, steps: 5, conditioned: false}\n"
                                   "    - {name: joint, steps: 20}\n");
  const auto runs =
      load(replace(both, "  batch_size: 32\n", "  batch_size: 32\n  pretrain: parallel\n"));
  const auto& train = runs[0].config.train;
  EXPECT_EQ(train.pretrain, trainer::PretrainSchedule::kParallel);
  EXPECT_FALSE(train.phases[1].conditioned);
  EXPECT_TRUE(train.phases[0].conditioned);
  const std::string resolved = to_yaml_string(runs[0].config);
  EXPECT_NE(resolved.find("pretrain: parallel"), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("conditioned: false"), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("pretrain_vae_ranks: 0"), std::string::npos) << resolved;
  EXPECT_EQ(to_yaml_string(load(resolved)[0].config), resolved);
  expect_error(
      replace(kBase, "  batch_size: 32\n", "  batch_size: 32\n  pretrain: parallel\n"),
      {"train.pretrain", "pretrain_vae and one pretrain_pixelcnn", "[pretrain_vae, joint]"});
  expect_error(replace(kBase, "  batch_size: 32\n", "  batch_size: 32\n  pretrain_vae_ranks: 1\n"),
               {"train.pretrain_vae_ranks", "parallel only"});
  expect_error(replace(kBase, "  batch_size: 32\n", "  batch_size: 32\n  pretrain: both\n"),
               {"train.pretrain", "sequential, parallel"});
  expect_error(
      replace(kBase, "{name: joint, steps: 20}", "{name: joint, steps: 20, conditioned: false}"),
      {"train.phases[1].conditioned", "pretrain_pixelcnn phases only"});
}

// The Table 1 baselines train in one joint phase, and the VAE alone models x itself.
TEST_F(LoadRuns, BaselineKindsAreCheckedAgainstPhasesAndAux) {
  const std::string one_phase = replace(kBase, R"(  phases:
    - {name: pretrain_vae, steps: 10}
    - {name: joint, steps: 20}
)",
                                        "  steps: 30\n");
  const auto pixelcnn = load(replace(one_phase, "model:\n", "model:\n  kind: pixelcnn_only\n"));
  EXPECT_EQ(pixelcnn[0].config.model.kind(), agave::model::ModelKind::kPixelCnnOnly);
  EXPECT_NE(to_yaml_string(pixelcnn[0].config).find("kind: pixelcnn_only"), std::string::npos);
  expect_error(replace(kBase, "model:\n", "model:\n  kind: pixelcnn_only\n"),
               {"train.phases", "'pretrain_vae'", "pixelcnn_only"});
  expect_error(replace(one_phase, "model:\n", "model:\n  kind: vae_only\n"),
               {"aux.resolution", "vae_only", "resolution 28, color_bins 256"});
  const auto vae = load(replace(replace(one_phase, "model:\n", "model:\n  kind: vae_only\n"),
                                "  resolution: 14\n  color_bins: 32\n", "  resolution: 28\n"));
  EXPECT_EQ(vae[0].config.model.kind(), agave::model::ModelKind::kVaeOnly);
  expect_error(replace(kBase, "model:\n", "model:\n  kind: flow\n"),
               {"model.kind", "'flow'", "agave, vae_only, pixelcnn_only"});
}

// model.pixelcnn.conditioning names the stream; absent, it is the built-in default (shared).
TEST_F(LoadRuns, PixelCnnConditioningIsANamedStream) {
  EXPECT_EQ(load(kBase)[0].config.model.pixelcnn().conditioning(),
            agave::model::PixelCnnConditioning::kShared);
  const auto per_layer =
      load(replace(kBase, "dropout: 0.0}", "dropout: 0.0, conditioning: per_layer}"));
  EXPECT_EQ(per_layer[0].config.model.pixelcnn().conditioning(),
            agave::model::PixelCnnConditioning::kPerLayer);
  EXPECT_NE(to_yaml_string(per_layer[0].config).find("conditioning: per_layer"), std::string::npos);
  expect_error(replace(kBase, "dropout: 0.0}", "dropout: 0.0, conditioning: masked}"),
               {"model.pixelcnn.conditioning", "'masked'", "per_layer, shared"});
  for (auto c : {agave::model::PixelCnnConditioning::kPerLayer,
                 agave::model::PixelCnnConditioning::kShared}) {
    EXPECT_EQ(
        agave::model::parse_pixelcnn_conditioning(agave::model::pixelcnn_conditioning_name(c)), c);
  }
  EXPECT_THROW(agave::model::parse_pixelcnn_conditioning("f(z)"), std::invalid_argument);
}

// Every experiment config loads, and the settings the paper's text fixes are what they say:
// the paper configs use the per_layer stream (the pixelcnn_only row has none) and, where the
// model is AGAVE, free bits 0 in the main arm; Appendix C's two arms differ in their last
// phase only, the control keeping λ and the free bits and dropping only the auxiliary term.
TEST(ShippedExperiments, LoadAndSetWhatThePaperFixes) {
  const std::string dir = std::string(AGAVE_SOURCE_DIR) + "/experiments/";
  auto last_phase = [&](const std::string& name) {
    const auto runs = load_runs(dir + name, {});
    const auto& c = runs.at(0).config;
    return trainer::phase_spec(c.train.phases.back(), c.loss, c.model.vae().free_bits(),
                               c.model.kind());
  };
  for (const std::string scale : {"cpu", "paper"}) {
    SCOPED_TRACE(scale);
    const auto eq6 = last_phase("appendix_c." + scale + ".yaml");
    const auto control = last_phase("appendix_c_control." + scale + ".yaml");
    const auto base = load_runs(dir + "appendix_c." + scale + ".yaml", {}).at(0).config;
    EXPECT_EQ(trainer::terms_text(eq6.terms), "pixel + KL");
    EXPECT_EQ(eq6.lambda, 1.0);
    EXPECT_EQ(eq6.free_bits, 0.0);
    EXPECT_EQ(trainer::terms_text(control.terms), "pixel + KL");
    EXPECT_TRUE(control.train_vae && control.train_pixelcnn);
    EXPECT_EQ(control.lambda, base.loss.lambda);
    EXPECT_EQ(control.free_bits, base.model.vae().free_bits());
  }
  const auto paper = [&](const std::string& name) {
    return load_runs(dir + name + ".paper.yaml", {});
  };
  for (const std::string name : {"fig4_lambda", "fig5_bins", "aux_resolution", "appendix_c",
                                 "appendix_c_control", "table1_agave"}) {
    SCOPED_TRACE(name);
    for (const auto& run : paper(name)) {
      EXPECT_EQ(run.config.model.pixelcnn().conditioning(), model::PixelCnnConditioning::kPerLayer);
    }
    EXPECT_EQ(paper(name).front().config.model.vae().free_bits(), 0.0);
  }
  // Fig. 4's free-bits arm: every λ at 0 and at IAF's 0.1.
  std::multiset<double> free_bits;
  for (const auto& run : paper("fig4_lambda")) free_bits.insert(run.config.model.vae().free_bits());
  EXPECT_EQ(free_bits.count(0.0), 5u);
  EXPECT_EQ(free_bits.count(0.1), 5u);
  EXPECT_EQ(paper("table1_agave_free_bits").at(0).config.model.vae().free_bits(), 0.1);
  // §4.2's resolutions, at its best model's λ.
  for (const std::string scale : {"cpu", "paper"}) {
    std::set<int64_t> resolutions;
    for (const auto& run : load_runs(dir + "aux_resolution." + scale + ".yaml", {})) {
      EXPECT_EQ(run.config.loss.lambda, 12.0);
      resolutions.insert(run.config.model.aux().resolution());
    }
    EXPECT_EQ(resolutions, (std::set<int64_t>{8, 16, 32}));
  }
  // Every shipped experiment loads.
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") {
      EXPECT_NO_THROW(load_runs(e.path().string(), {})) << e.path();
    }
  }
}

// Table 1's equal-compute row (issue 33, item 3) is the PixelCNN-alone row with more steps and
// its own name: nothing else may differ, or the comparison would not be of budgets alone.
TEST(ShippedExperiments, TheEqualTimePixelCnnRowDiffersFromTheEqualUpdatesRowInStepsAlone) {
  const std::string dir = std::string(AGAVE_SOURCE_DIR) + "/experiments/";
  const auto updates = load_runs(dir + "table1_pixelcnn.cpu.yaml", {}).at(0).config;
  auto time = load_runs(dir + "table1_pixelcnn_equal_time.cpu.yaml", {}).at(0).config;
  EXPECT_GT(time.train.steps, updates.train.steps);
  EXPECT_EQ(time.run.output_dir, updates.run.output_dir);  // one folder, one table
  EXPECT_NE(time.run.name, updates.run.name);
  time.run.name = updates.run.name;
  time.train.steps = updates.train.steps;
  time.train.phases = updates.train.phases;
  EXPECT_EQ(to_yaml_string(time), to_yaml_string(updates));
}

TEST_F(LoadRuns, GlobalBatchMustSplitOverRanksPerRun) {
  expect_error(std::string(kBase) + "sweep: {ranks_per_run: 3}\n",
               {"c.yaml:15", "train.batch_size", "32", "divisible", "ranks_per_run = 3"});
}

TEST_F(LoadRuns, MalformedYamlNamesLineAndColumn) {
  expect_error("run:\n  name: [unclosed\n", {"c.yaml:", "malformed YAML"});
  expect_error("- just\n- a list\n", {"c.yaml:1", "mapping of sections"});
  try {
    load_runs(dir.path().string() + "/missing.yaml", {});
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.yaml: cannot read"), std::string::npos);
  }
}

// ---- overrides ---------------------------------------------------------------------------------

TEST_F(LoadRuns, SetOverridesFileAndLaterSetWins) {
  auto runs = load(kBase, {"loss.lambda=4", "aux.color_bins=64", "loss.lambda=8"});
  EXPECT_DOUBLE_EQ(runs[0].config.loss.lambda, 8.0);
  EXPECT_EQ(runs[0].config.model.aux().color_bins(), 64);
  // A section absent from the file is created by the override; YAML values work.
  runs = load(kBase, {"eval.importance_samples=7", "model.vae={depth: 3, latent_resolution: 14}"});
  EXPECT_EQ(runs[0].config.eval.importance_samples, 7);
  EXPECT_EQ(runs[0].config.model.vae().depth(), 3);
  EXPECT_EQ(runs[0].config.model.vae().latent_resolution(), 14);
  EXPECT_EQ(runs[0].config.model.vae().width(), model::VaeOptions().width());
}

TEST_F(LoadRuns, SetErrorsNameTheOverride) {
  expect_error(kBase, {"--set loss.lambda=-3", "loss.lambda", "[0, 1000]"}, {"loss.lambda=-3"});
  expect_error(kBase, {"--set loss.lamda=3", "unknown key"}, {"loss.lamda=3"});
  expect_error(kBase, {"--set lambda", "key.path=value"}, {"lambda"});
  expect_error(kBase, {"--set loss.lambda.x=1", "loss.lambda is a value"}, {"loss.lambda.x=1"});
  expect_error(kBase, {"--set model.vae={depth: 0}", "model.vae.depth"}, {"model.vae={depth: 0}"});
}

// ---- sweeps ------------------------------------------------------------------------------------

TEST_F(LoadRuns, SweepExpandsGridInFileOrderWithDeterministicNames) {
  const auto runs = load(std::string(kBase) + R"(sweep:
  ranks_per_run: 2
  grid:
    loss.lambda: [1, 12]
    aux.resolution: [28, 7]
    aux.color_bins: [256, 32]
)");
  ASSERT_EQ(runs.size(), 8u);
  EXPECT_EQ(runs[0].name, "lambda=1,aux_resolution=28,color_bins=256");
  EXPECT_EQ(runs[1].name, "lambda=1,aux_resolution=28,color_bins=32");
  EXPECT_EQ(runs[2].name, "lambda=1,aux_resolution=7,color_bins=256");
  EXPECT_EQ(runs[7].name, "lambda=12,aux_resolution=7,color_bins=32");
  EXPECT_EQ(runs[7].output_dir, "out/t/lambda=12,aux_resolution=7,color_bins=32");
  EXPECT_DOUBLE_EQ(runs[7].config.loss.lambda, 12.0);
  EXPECT_EQ(runs[7].config.model.aux().resolution(), 7);
  EXPECT_EQ(runs[7].config.model.aux().color_bins(), 32);
  EXPECT_EQ(runs[2].config.model.aux().resolution(), 7);
  EXPECT_EQ(runs[2].config.model.aux().color_bins(), 256);
  // Unswept values stay as in the file.
  for (const auto& r : runs) EXPECT_EQ(r.config.train.steps, 30);
  // Same file, same names: deterministic.
  const auto again = load(std::string(kBase) + "sweep:\n  grid:\n    loss.lambda: [1, 12]\n");
  EXPECT_EQ(again[1].name, "lambda=12");
}

TEST_F(LoadRuns, SweepOverAnyKeyAndCollidingLabelsUseThePath) {
  const auto runs = load(std::string(kBase) + R"(sweep:
  grid:
    model.vae.width: [8, 16]
    model.pixelcnn.nr_filters: [4]
    train.optimizer.lr: [0.001]
)");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].name, "width=16,nr_filters=4,lr=0.001");
  EXPECT_EQ(runs[1].config.model.vae().width(), 16);
  EXPECT_DOUBLE_EQ(runs[1].config.train.optimizer.lr, 0.001);
  const auto clash = load(std::string(kBase) + R"(sweep:
  grid:
    model.vae.depth: [1]
    train.optimizer.eps: [1e-7]
    eval.every: [5]
    checkpoint.every: [5]
)");
  EXPECT_EQ(clash[0].name, "depth=1,eps=1e-7,eval_every=5,checkpoint_every=5");
}

TEST_F(LoadRuns, InvalidSweepPointNamesItsLine) {
  expect_error(std::string(kBase) + "sweep:\n  grid:\n    loss.lambda: [1,\n      -2]\n",
               {"c.yaml:22", "sweep point lambda=-2", "loss.lambda", "[0, 1000]"});
  expect_error(std::string(kBase) + "sweep:\n  grid:\n    aux.color_bins: [256, 100]\n",
               {"c.yaml:21", "color_bins=100", "must divide 256"});
  expect_error(std::string(kBase) + "sweep:\n  grid:\n    loss.lamda: [1]\n",
               {"sweep point lamda=1", "unknown key"});
  expect_error(std::string(kBase) + "sweep:\n  grid:\n    loss.lambda: 3\n",
               {"c.yaml:21", "sweep.grid.loss.lambda", "non-empty list"});
  expect_error(std::string(kBase) + "sweep:\n  grid:\n    sweep.ranks_per_run: [1]\n",
               {"sweep.grid.sweep.ranks_per_run", "cannot sweep itself"});
  expect_error(std::string(kBase) + "sweep:\n  grid:\n    loss.lambda: [1, 2]\n",
               {"--set loss.lambda", "conflicts with the sweep", "c.yaml:21"}, {"loss.lambda=3"});
}

}  // namespace
}  // namespace agave::launcher
