// The pieces of a sharded checkpoint: which rank writes which tensor, and the HDF5 tensor file
// (names, shapes and dtypes round-trip, h5py reads it, hostile headers are refused).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "checkpoint/sharded_checkpoint.h"
#include "checkpoint/tensor_file.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"

namespace agave::checkpoint {
namespace {

using agave::testing::sh;
using agave::testing::TempDir;
namespace fs = std::filesystem;

TEST(ShardAssignment, BalancesBytesAndIsDeterministic) {
  std::map<std::string, torch::Tensor> state;
  for (int i = 0; i < 20; ++i) state["t" + std::to_string(i)] = torch::zeros({(i % 7 + 1) * 100});
  state["big"] = torch::zeros({3000});
  const auto a = assign_shards(state, 3);
  EXPECT_EQ(a, assign_shards(state, 3));
  std::vector<int64_t> load(3, 0);
  for (const auto& [name, r] : a) load[r] += state[name].numel();
  const auto [lo, hi] = std::minmax_element(load.begin(), load.end());
  EXPECT_LE(*hi - *lo, 700) << load[0] << " " << load[1] << " " << load[2];
  EXPECT_EQ(a.at("big"), 0);  // largest first, onto rank 0
}

TEST(TensorFile, RoundTripsNamesShapesAndDtypesAndH5pyReadsIt) {
  TempDir dir;
  const std::string path = (dir.path() / "s.h5").string();
  const auto w = torch::randn({4, 3, 2, 2}).contiguous(at::MemoryFormat::ChannelsLast);
  write_tensor_file(path,
                    {{"model/conv.weight", w},
                     {"optim/conv.weight/step", torch::tensor(int64_t{17})},
                     {"rng/cpu", torch::arange(10, torch::kUInt8)}},
                    {{"step", 5}});
  TensorFileReader r(path);
  EXPECT_TRUE(r.contains("model/conv.weight"));
  EXPECT_FALSE(r.contains("model/other"));
  EXPECT_FALSE(r.contains("nothing/at/all"));
  EXPECT_TRUE(torch::equal(r.read("model/conv.weight"), w));
  EXPECT_EQ(r.read("optim/conv.weight/step").item<int64_t>(), 17);
  EXPECT_EQ(r.attribute("step"), 5);
  auto wrong = torch::zeros({4, 3});
  EXPECT_THROW(r.read_into("model/conv.weight", wrong), std::runtime_error);
  const auto py =
      sh("/usr/bin/python3 -c \"import h5py,numpy; f=h5py.File('" + path +
         "','r'); print(f['model']['conv.weight'].shape, int(f['optim/conv.weight/step'][()]))\"");
  ASSERT_EQ(py.code, 0) << py.output;
  EXPECT_EQ(py.output, "(4, 3, 2, 2) 17\n");
}

// A checkpoint shard from another machine whose dataset address was patched (the issue-14
// attack on image shards, here on a tensor): refused naming the file and the tensor before any
// value is read or allocated.
TEST(TensorFile, RefusesATensorWhoseValuesLieOutsideTheFile) {
  TempDir dir;
  const std::string path = (dir.path() / "s.h5").string();
  write_tensor_file(path, {{"model/w", torch::arange(4096, torch::kFloat32)}}, {{"step", 1}});
  // The dataset's file offset as h5py sees it, then every occurrence of those 8 bytes in the
  // object header replaced by an address near 2^64 (object headers v1 carry no checksum).
  const auto patched =
      sh("/usr/bin/python3 -c \"import h5py,struct; f=h5py.File('" + path +
         "','r'); o=f['model/w'].id.get_offset(); f.close(); b=bytearray(open('" + path +
         "','rb').read()); k=struct.pack('<Q',o); n=b.count(k); b=b.replace(k, "
         "struct.pack('<Q',2**64-8192)); open('" +
         path + "','wb').write(b); print(n)\"");
  ASSERT_EQ(patched.code, 0) << patched.output;
  ASSERT_NE(patched.output, "0\n") << "the offset was not found in the file";
  try {
    TensorFileReader r(path);
    (void)r.read("model/w");
    FAIL() << "a tensor outside the file was read";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find("model/w"), std::string::npos) << m;
  }
}

// Compression and chunking are refused: agave never writes them, and they are where libhdf5's
// filter code would run on foreign bytes.
TEST(TensorFile, RefusesChunkedOrCompressedTensors) {
  TempDir dir;
  const std::string path = (dir.path() / "gz.h5").string();
  const auto made = sh("/usr/bin/python3 -c \"import h5py,numpy; f=h5py.File('" + path +
                       "','w'); f.create_dataset('model/w', data=numpy.zeros((64,64),'f4'), "
                       "compression='gzip'); f.close()\"");
  ASSERT_EQ(made.code, 0) << made.output;
  try {
    TensorFileReader r(path);
    (void)r.read("model/w");
    FAIL() << "a compressed tensor was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("model/w"), std::string::npos) << e.what();
  }
}

// The inputs that crash, hang or exhaust libhdf5 (fuzz/hdf5-known/) opened as checkpoint
// shards: each is refused with an error naming it, and this process survives.
TEST(TensorFile, HeadersThatBreakLibhdf5AreRefusedFromAProbeProcess) {
  ::setenv("AGAVE_H5PROBE_SECONDS", "5", 1);
  const auto inputs = agave::testing::inputs_that_break_libhdf5();
  for (const auto& input : inputs) {
    const std::string name = input.filename().string();
    const auto start = std::chrono::steady_clock::now();
    try {
      TensorFileReader r(input.string());
      ADD_FAILURE() << name << " was opened as a checkpoint shard";
    } catch (const std::runtime_error& err) {
      EXPECT_NE(std::string(err.what()).find(name), std::string::npos) << err.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15)) << name;
  }
  ::unsetenv("AGAVE_H5PROBE_SECONDS");
  EXPECT_GE(inputs.size(), 4u) << "fuzz/hdf5-known/ lost its inputs";
}

}  // namespace
}  // namespace agave::checkpoint
