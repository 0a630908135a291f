// agave_data: the data pipeline's command line (convert, inspect, fetch).
// Exit status: 0 success, 1 an I/O problem or unreadable file (one line naming the file), 2 a
// usage error or malformed input (BadDataError: one line naming the file and the field).
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <optional>

#include "data/convert.h"
#include "data/errors.h"
#include "data/fetch.h"
#include "data/inspect.h"
#include "launcher/entry_point.h"
#include "monitoring/progress_bar.h"
#include "version/version.h"

namespace {

using agave::data::Progress;
using agave::launcher::code;
using agave::launcher::ExitCode;
using agave::monitoring::ProgressBar;

// One bar per stage; a new stage label finishes the previous bar.
class ProgressView {
 public:
  explicit ProgressView(bool quiet) : quiet_(quiet) {}
  void operator()(const Progress& p) {
    if (quiet_) return;
    if (!bar_ || p.stage != stage_) {
      bar_.reset();
      stage_ = p.stage;
      bar_ = std::make_unique<ProgressBar>(p.stage, p.total);
    }
    bar_->update(p.done);
  }
  void done() { bar_.reset(); }

 private:
  bool quiet_;
  std::string stage_;
  std::unique_ptr<ProgressBar> bar_;
};

std::string shape_string(const agave::data::ImageShape& s) {
  return fmt::format("{}x{}x{}", s.channels, s.height, s.width);
}

int run_convert(const agave::data::ConvertOptions& opt, bool quiet) {
  ProgressView view(quiet);
  const auto manifests = agave::data::convert(opt, std::ref(view));
  view.done();
  for (const auto& m : manifests) {
    fmt::print("{} {}: {} images of {} in {} shards -> {}\n", m.dataset, m.split, m.count,
               shape_string(m.shape), m.shards.size(), m.path);
  }
  return 0;
}

int run_inspect(const std::string& path, bool verify, bool quiet) {
  ProgressView view(quiet);
  const auto report = agave::data::inspect(path, verify, std::ref(view));
  view.done();
  for (const auto& s : report.splits) {
    fmt::print("{} {}: {} images of {} uint8, {} shard(s){}\n", s.dataset, s.split, s.count,
               shape_string(s.shape), s.shards.size(),
               s.manifest_path.empty() ? "" : " (" + s.manifest_path + ")");
    if (!s.source.empty()) fmt::print("  source: {}\n", s.source);
    std::string mean, sd;
    for (size_t c = 0; c < s.mean.size(); ++c) {
      mean += fmt::format(" {:.6f}", s.mean[c]);
      sd += fmt::format(" {:.6f}", s.std[c]);
    }
    fmt::print("  per-channel mean{} | std{} (pixels / 255)\n", mean, sd);
    std::string labels;
    for (size_t l = 0; l < s.label_counts.size(); ++l) {
      labels += fmt::format(" {}:{}", l, s.label_counts[l]);
    }
    fmt::print("  labels{}\n", labels);
    for (const auto& sh : s.shards) {
      std::string state = "not verified";
      if (!sh.sha256_computed.empty()) {
        state = sh.sha256_computed == sh.sha256_attribute &&
                        (sh.sha256_manifest.empty() || sh.sha256_manifest == sh.sha256_attribute)
                    ? "verified"
                    : "MISMATCH";
      }
      fmt::print("  {}  {} images  chunks of {}  {}  sha256 {}  {}\n",
                 std::filesystem::path(sh.path).filename().string(), sh.count, sh.chunk_images,
                 sh.compression > 0 ? fmt::format("gzip {}", sh.compression) : "raw",
                 sh.sha256_attribute.empty() ? "?" : sh.sha256_attribute, state);
    }
  }
  if (!report.ok()) {
    for (const auto& p : report.problems) fmt::print(stderr, "agave_data: {}\n", p);
    fmt::print(stderr, "agave_data: error: {} problem(s) in {}\n", report.problems.size(), path);
    return code(ExitCode::kFailed);
  }
  fmt::print("{}\n", verify ? "all checksums verified" : "checksums not verified (--no-verify)");
  return 0;
}

int run_fetch(const std::string& dataset, const std::string& dir, const std::string& url,
              bool quiet) {
  const auto known = agave::data::parse_dataset(dataset);
  if (known != agave::data::Dataset::kCifar10) {
    throw agave::io::DataError(
        "", (known ? "fetch knows " : "unknown data set '" + dataset + "'; fetch knows ") +
                std::string(agave::data::dataset_name(agave::data::Dataset::kCifar10)) +
                " only; Fashion-MNIST comes with Debian's dataset-fashion-mnist "
                "(/usr/share/datasets/fashion-mnist)");
  }
  ProgressView view(quiet);
  const std::string path = agave::data::fetch_cifar10(dir, std::ref(view), url);
  view.done();
  fmt::print("{} (MD5 {} verified)\n", path, agave::data::kCifar10Md5);
  return 0;
}

// The subcommands and their options, registered on `app`; run() does the one parsed.
struct Commands {
  explicit Commands(CLI::App& app) {
    app.require_subcommand(1);
    app.fallthrough();  // -q is accepted after the subcommand too
    app.set_version_flag("--version", agave::version::describe("agave_data"));
    app.add_flag("-q,--quiet", quiet, "No progress output");
    add_convert(app);
    add_inspect(app);
    add_fetch(app);
  }

  void add_convert(CLI::App& app) {
    convert = app.add_subcommand("convert",
                                 "Convert CIFAR-10 binary batches (folder or "
                                 "cifar-10-binary.tar.gz) or IDX files to shards");
    convert->add_option("--source", conv.source, "Raw source: folder or archive")->required();
    convert->add_option("--output", conv.output, "Shard folder to write")->required();
    convert->add_option("--dataset", dataset_name,
                        "One of " + agave::data::dataset_names() + " (default: detect)");
    convert->add_option("--images-per-shard", conv.images_per_shard, "Images per shard file")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    convert
        ->add_option("--chunk-images", conv.chunk_images,
                     "Images per HDF5 chunk (0: about 256 KiB)")
        ->check(CLI::NonNegativeNumber);
    convert->add_option("--gzip", conv.compression, "gzip level 0-9 (0: raw, fastest to read)")
        ->check(CLI::Range(0, 9));
  }

  void add_inspect(CLI::App& app) {
    inspect = app.add_subcommand("inspect",
                                 "Counts, shapes, per-channel statistics, and "
                                 "verification of every checksum");
    inspect->add_option("path", inspect_path, "Shard folder, manifest or shard file")->required();
    inspect->add_flag("--no-verify", no_verify, "Skip recomputing the checksums");
  }

  void add_fetch(CLI::App& app) {
    fetch = app.add_subcommand("fetch",
                               "Download the official CIFAR-10 binary archive and "
                               "verify its MD5");
    fetch->add_option("dataset", fetch_dataset, "cifar10")->required();
    fetch->add_option("--output", fetch_dir, "Folder for the archive")->capture_default_str();
    fetch->add_option("--url", fetch_url, "Mirror to download from")->capture_default_str();
  }

  int run() {
    if (*convert) {
      if (!dataset_name.empty()) {
        conv.dataset = agave::data::parse_dataset(dataset_name);
        if (!conv.dataset) {
          fmt::print(stderr, "agave_data: error: unknown --dataset '{}'; allowed: {}\n",
                     dataset_name, agave::data::dataset_names());
          return code(ExitCode::kUserError);
        }
      }
      return run_convert(conv, quiet);
    }
    if (*inspect) return run_inspect(inspect_path, !no_verify, quiet);
    return run_fetch(fetch_dataset, fetch_dir, fetch_url, quiet);
  }

  bool quiet = false;
  CLI::App* convert = nullptr;
  agave::data::ConvertOptions conv;
  std::string dataset_name;
  CLI::App* inspect = nullptr;
  std::string inspect_path;
  bool no_verify = false;
  CLI::App* fetch = nullptr;
  // The default is where the CIFAR-10 configs' data.source looks, so fetch alone is enough.
  std::string fetch_dataset, fetch_dir = "data/cifar10", fetch_url = agave::data::kCifar10Url;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"agave_data: HDF5 image shards for agave (convert, inspect, fetch)"};
  Commands commands(app);
  if (const auto code = agave::launcher::parse_command_line(app, argc, argv)) return *code;
  return agave::launcher::guarded_main("agave_data", [&] { return commands.run(); });
}
