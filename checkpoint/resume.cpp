#include "checkpoint/resume.h"

#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "cluster/activity.h"

namespace agave::checkpoint {
namespace fs = std::filesystem;
namespace {

// Rank 0's choice: a checkpoint folder, "" for a fresh start; throws CheckpointError.
std::string choose(const ResumeRequest& request, const std::string& root,
                   const std::string& run_name) {
  switch (request.mode) {
    case ResumeRequest::Mode::kAuto:
      return ShardedCheckpoint::latest(root).value_or("");
    case ResumeRequest::Mode::kNever:
      if (ShardedCheckpoint::latest(root)) {
        throw CheckpointError(root + " already holds checkpoints of run " + run_name +
                              "; resume them (--resume auto) or choose another run.output_dir");
      }
      return "";
    case ResumeRequest::Mode::kFolder:
      break;
  }
  if (fs::exists(fs::path(request.folder) / "manifest.json")) return request.folder;
  if (auto latest = ShardedCheckpoint::latest(request.folder)) return *latest;
  throw CheckpointError(request.folder + ": no complete checkpoint there");
}

constexpr const char* kConditioningKey = "model.pixelcnn.conditioning";

// "none" for the unconditional PixelCNN++ alone, else the conditioning stream's name: the
// streams have different parameters, so a checkpoint of one cannot resume as the other.
std::string pixelcnn_conditioning(const model::AgaveOptions& o) {
  return model::has_latents(o.kind())
             ? model::pixelcnn_conditioning_name(o.pixelcnn().conditioning())
             : "none";
}

// What a checkpoint written before `key` was recorded had: "(none)" if the key is unknown.
std::string value_before_key_existed(const std::string& key, const CheckpointMeta& meta) {
  if (key == "model.kind") return "agave";
  if (key == kConditioningKey) {
    const auto kind = meta.model_signature.find("model.kind");
    // The PixelCNN++ alone once carried a conditioning stream fed zeros; the others had the
    // shared stream, the only one there was (docs/checkpoints.md has the dates).
    const bool alone = kind != meta.model_signature.end() && kind->second == "pixelcnn_only";
    return alone ? "a stream fed zeros (agave before 2026-12-03)" : "shared";
  }
  return "(none)";
}

// What the checkpoint records for `key`, in today's terms.
std::string recorded_value(const std::string& key, const CheckpointMeta& meta) {
  const auto it = meta.model_signature.find(key);
  if (it == meta.model_signature.end()) return value_before_key_existed(key, meta);
  // From 2026-12-03 until the per_layer stream existed, a conditioned PixelCNN was recorded as
  // "f(z)": that was the shared stream.
  if (key == kConditioningKey && it->second == "f(z)") return "shared";
  return it->second;
}

void check_signature(const std::string& dir, const CheckpointMeta& meta,
                     const std::map<std::string, std::string>& want) {
  for (const auto& [key, value] : want) {
    const std::string had = recorded_value(key, meta);
    if (had != value) {
      throw CheckpointError(dir + " was written with " + key + " = " + had +
                            " but the config has " + value +
                            "; resume with the original config or start a new run");
    }
  }
}

}  // namespace

ResumeRequest ResumeRequest::parse(const std::string& text) {
  if (text.empty()) throw std::invalid_argument("--resume: must not be empty");
  if (text == "auto") return {Mode::kAuto, ""};
  if (text == "never") return {Mode::kNever, ""};
  return {Mode::kFolder, text};
}

std::map<std::string, std::string> model_signature(const model::AgaveOptions& o,
                                                   const std::string& dataset) {
  const auto& v = o.vae();
  const auto& p = o.pixelcnn();
  auto str = [](auto x) {
    std::ostringstream s;
    s << x;
    return s.str();
  };
  return {{"data.dataset", dataset},
          {"model.kind", model::model_kind_name(o.kind())},
          {"model.vae.depth", str(v.depth())},
          {"model.vae.width", str(v.width())},
          {"model.vae.latent_channels", str(v.latent_channels())},
          {"model.vae.latent_resolution", str(v.latent_resolution())},
          {"model.vae.iaf_steps", str(v.iaf_steps())},
          {"model.pixelcnn.nr_resnet", str(p.nr_resnet())},
          {"model.pixelcnn.nr_filters", str(p.nr_filters())},
          {"model.pixelcnn.nr_logistic_mix", str(p.nr_logistic_mix())},
          {kConditioningKey, pixelcnn_conditioning(o)},
          {"aux.resolution", str(o.aux().resolution())},
          {"aux.color_bins", str(o.aux().color_bins())}};
}

ResumePoint decide_resume(const ResumeRequest& request, const std::string& checkpoint_root,
                          const std::string& run_name,
                          const std::map<std::string, std::string>& signature,
                          cluster::Communicator& comm) {
  cluster::ActivityScope named("resume decision");
  // "ok:<dir>" or "error:<message>", decided on rank 0 only.
  std::string verdict;
  if (comm.rank() == 0) {
    try {
      verdict = "ok:" + choose(request, checkpoint_root, run_name);
    } catch (const CheckpointError& e) {
      verdict = std::string("error:") + e.what();
    }
  }
  verdict = comm.all_gather_string(verdict).front();
  if (verdict.rfind("error:", 0) == 0) throw CheckpointError(verdict.substr(6));
  ResumePoint point;
  point.dir = verdict.substr(3);
  if (point.fresh()) return point;
  point.meta = ShardedCheckpoint::read_meta(point.dir);
  check_signature(point.dir, point.meta, signature);
  return point;
}

}  // namespace agave::checkpoint
