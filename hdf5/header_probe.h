#pragma once
// libhdf5 itself can crash, loop or allocate gigabytes on a crafted file before agave sees a
// single value (fuzz/hdf5-known/: H5Fopen, the first read of a string attribute), so no check of
// ours can come first. An untrusted shard's header is therefore read once in a separate
// process (agave_h5probe, next to the executables): if that process dies of a signal, runs past
// its deadline or its memory cap, the file is refused with one line and this process never
// reads it. A header that reads cleanly (or fails with an ordinary error) is then read here.
#include <chrono>
#include <string>

namespace agave::hdf5 {

struct HeaderProbeOptions {
  std::chrono::seconds deadline{30};  // AGAVE_H5PROBE_SECONDS overrides
  // The probe's address-space cap: a valid header needs a few MiB.
  long long memory_bytes = 2LL << 30;
};

// Reads the HDF5 header, attributes, chunk index and labels of the shard at `path` in an
// agave_h5probe process. Throws io::BadDataError naming the file when libhdf5 crashed, hung or ran
// out of memory there. Fails closed: no agave_h5probe ($AGAVE_H5PROBE when set, else the
// executable's folder, then the build tree), a probe that cannot be started or whose ending
// cannot be learned is a io::DataError, and the shard is not read.
void probe_shard_header(const std::string& path, const HeaderProbeOptions& options = {});

// The same protection for any HDF5 file of named tensors (checkpoint shards): reads the header
// of every group, dataset and attribute in agave_h5probe and checks that each dataset's values
// lie contiguous and unfiltered inside the file (hdf5/datasets.h). Throws io::BadDataError naming
// the file and the dataset otherwise.
void probe_dataset_headers(const std::string& path, const HeaderProbeOptions& options = {});

// agave_h5probe's first argument for probe_dataset_headers (without it: an image shard).
inline constexpr const char* kProbeDatasetsMode = "--datasets";

// agave_h5probe's exit codes; on 2 and 4 it prints the error (without the path) to stdout.
enum ProbeExit : int {
  kProbeOk = 0,
  kProbeBadData = 2,
  kProbeOutOfMemory = 3,
  kProbeDataError = 4
};

// The executable used, or "" when there is none.
std::string header_probe_executable();

}  // namespace agave::hdf5
