#include <gtest/gtest.h>
#include <hdf5.h>

#include "data/errors.h"
#include "data/inspect.h"
#include "data/shard.h"
#include "hdf5/checked.h"
#include "io/checksum.h"
#include "tests/data/test_util.h"

namespace agave::data {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

ShardWriteOptions small_options(int64_t count, int compression = 0) {
  ShardWriteOptions w;
  w.dataset = "synthetic";
  w.source = "unit test";
  w.split = "train";
  w.shape = ImageShape{3, 4, 5};
  w.count = count;
  w.first_index = 1000;
  w.chunk_images = 16;
  w.compression = compression;
  return w;
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// The error message must name the file; the test also wants to see it when it fails.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const io::DataError& e) {
    return e.what();
  }
  return "(no io::DataError thrown)";
}

TEST(Shard, RoundTripsBytesAttributesAndChecksum) {
  for (int level : {0, 6}) {
    TempDir dir;
    const std::string path = dir / "s.h5";
    const auto opt = small_options(100, level);
    const auto images = random_bytes(100 * 60, 1);
    std::vector<uint8_t> labels(100);
    for (int i = 0; i < 100; ++i) labels[i] = static_cast<uint8_t>(i % 7);
    ShardWriter w(path, opt);
    w.append(images.data(), labels.data(), 37);
    EXPECT_FALSE(fs::exists(path)) << "a shard must not appear before it is finished";
    w.append(images.data() + 37 * 60, labels.data() + 37, 63);
    const ShardInfo written = w.finish();
    EXPECT_TRUE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".tmp"));

    ShardReader r(path);
    const ShardInfo& info = r.info();
    EXPECT_EQ(info.count, 100);
    EXPECT_EQ(info.shape.channels, 3);
    EXPECT_EQ(info.shape.height, 4);
    EXPECT_EQ(info.shape.width, 5);
    EXPECT_EQ(info.split, "train");
    EXPECT_EQ(info.dataset, "synthetic");
    EXPECT_EQ(info.source, "unit test");
    EXPECT_EQ(info.first_index, 1000);
    EXPECT_EQ(info.chunk_images, 16);
    EXPECT_EQ(info.compression, level);
    EXPECT_EQ(info.sha256, written.sha256);
    EXPECT_EQ(info.sha256.size(), 64u);

    std::vector<uint8_t> back(images.size());
    r.read_images(0, 100, back.data());
    EXPECT_EQ(back, images);
    EXPECT_EQ(r.read_labels(), labels);
    EXPECT_EQ(r.compute_sha256(), info.sha256);

    io::Digest d;
    d.update(images.data(), images.size());
    d.update(labels.data(), labels.size());
    EXPECT_EQ(d.hex(), info.sha256) << "checksum = SHA-256(images bytes ++ labels bytes)";

    // The chunk table lets the loader read bytes without HDF5: check it points at the data.
    const auto locs = r.chunk_locations();
    ASSERT_TRUE(locs.has_value());
    ASSERT_EQ(locs->size(), 7u);
    EXPECT_EQ(locs->back().count, 100 - 6 * 16);
    if (level == 0) {
      const auto file = test::read_file(path);
      for (const auto& c : *locs) {
        ASSERT_LE(c.offset + c.stored_bytes, file.size());
        EXPECT_EQ(0, std::memcmp(file.data() + c.offset, images.data() + c.first * 60,
                                 static_cast<size_t>(c.count * 60)));
      }
    } else {
      EXPECT_TRUE(locs->front().deflated);
    }
  }
}

TEST(Shard, UnfinishedWriterLeavesNothing) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  {
    ShardWriter w(path, small_options(10));
    const auto images = random_bytes(5 * 60, 2);
    std::vector<uint8_t> labels(5, 1);
    w.append(images.data(), labels.data(), 5);
    EXPECT_TRUE(fs::exists(path + ".tmp"));
    EXPECT_THROW(w.finish(), io::DataError) << "finish() of an incomplete shard must fail";
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(Shard, ReadableByH5py) {
  if (!test::have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py/numpy (python3-h5py)";
  TempDir dir;
  const std::string path = dir / "s.h5";
  for (int level : {0, 4}) {
    const auto images = random_bytes(50 * 60, 3);
    std::vector<uint8_t> labels(50, 9);
    auto opt = small_options(50, level);
    ShardWriter w(path, opt);
    w.append(images.data(), labels.data(), 50);
    const ShardInfo info = w.finish();
    uint64_t sum = 0;
    for (uint8_t b : images) sum += b;
    const std::string script =
        "import h5py, hashlib, sys\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "x, y = f['images'], f['labels']\n"
        "assert x.dtype == 'uint8' and y.dtype == 'uint8', (x.dtype, y.dtype)\n"
        "assert x.shape == (50, 3, 4, 5), x.shape\n"
        "assert x.chunks[0] == 16, x.chunks\n"
        "a = f.attrs\n"
        "assert a['split'] == 'train' and a['dataset'] == 'synthetic', dict(a)\n"
        "assert int(a['count']) == 50 and list(a['image_shape']) == [3, 4, 5]\n"
        "h = hashlib.sha256(x[()].tobytes() + y[()].tobytes()).hexdigest()\n"
        "assert h == a['sha256'], (h, a['sha256'])\n"
        "print(int(x[()].astype('uint64').sum()))\n";
    test::write_file(dir / "check.py", std::vector<uint8_t>(script.begin(), script.end()));
    std::string out;
    ASSERT_EQ(test::run_command("/usr/bin/python3 " + (dir / "check.py") + " " + path, &out), 0)
        << out;
    EXPECT_EQ(std::stoull(out), sum);
    EXPECT_EQ(info.compression, level);
    fs::remove(path);
  }
}

TEST(Shard, MissingFileNamesThePath) {
  TempDir dir;
  const std::string msg = error_of([&] { ShardReader r(dir / "nope.h5"); });
  EXPECT_NE(msg.find(dir / "nope.h5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no such file"), std::string::npos) << msg;
}

TEST(Shard, TruncatedOrCorruptFilesAreClearErrors) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  {
    const auto images = random_bytes(100 * 60, 4);
    std::vector<uint8_t> labels(100, 0);
    ShardWriter w(path, small_options(100));
    w.append(images.data(), labels.data(), 100);
    w.finish();
  }
  const auto bytes = test::read_file(path);

  // Cut in half: HDF5 notices the end-of-file address beyond the real end.
  const std::string half = dir / "half.h5";
  test::write_file(half, std::vector<uint8_t>(bytes.begin(), bytes.begin() + bytes.size() / 2));
  std::string msg = error_of([&] {
    ShardReader r(half);
    r.chunk_locations();
  });
  EXPECT_NE(msg.find(half), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;

  // Not HDF5 at all.
  const std::string text = dir / "text.h5";
  test::write_file(text, std::vector<uint8_t>(1000, 'x'));
  msg = error_of([&] { ShardReader r(text); });
  EXPECT_NE(msg.find(text), std::string::npos) << msg;
  EXPECT_NE(msg.find("not an HDF5 file"), std::string::npos) << msg;

  // Signature intact, metadata garbled.
  const std::string garbled = dir / "garbled.h5";
  auto g = bytes;
  for (size_t i = 8; i < 2048 && i < g.size(); ++i) g[i] ^= 0x5a;
  test::write_file(garbled, g);
  msg = error_of([&] { ShardReader r(garbled); });
  EXPECT_EQ(msg.rfind(garbled, 0), 0u) << msg;
}

// Writes an HDF5 file by hand with the given images dtype and dims, and agave's attributes.
void write_raw_shard(const std::string& path, hid_t dtype, std::vector<hsize_t> dims,
                     int64_t count_attr) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t s = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t d = H5Dcreate2(f, "images", dtype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t n = dims[0];
  hid_t ls = H5Screate_simple(1, &n, nullptr);
  hid_t l = H5Dcreate2(f, "labels", H5T_STD_U8LE, ls, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hdf5::write_string_attr(f, "format", kShardFormat, path);
  hdf5::write_int_attr(f, "count", {count_attr}, path);
  hdf5::write_int_attr(f, "image_shape", {3, 4, 5}, path);
  H5Dclose(l);
  H5Sclose(ls);
  H5Dclose(d);
  H5Sclose(s);
  H5Fclose(f);
}

TEST(Shard, WrongDtypeOrShapeIsRejected) {
  TempDir dir;
  const std::string f32 = dir / "float.h5";
  write_raw_shard(f32, H5T_IEEE_F32LE, {10, 3, 4, 5}, 10);
  std::string msg = error_of([&] { ShardReader r(f32); });
  EXPECT_NE(msg.find(f32), std::string::npos) << msg;
  EXPECT_NE(msg.find("dtype float32, expected uint8"), std::string::npos) << msg;

  const std::string shape = dir / "shape.h5";
  write_raw_shard(shape, H5T_STD_U8LE, {10, 3, 5, 4}, 10);
  msg = error_of([&] { ShardReader r(shape); });
  EXPECT_NE(msg.find("has shape [10, 3, 5, 4]"), std::string::npos) << msg;

  const std::string count = dir / "count.h5";
  write_raw_shard(count, H5T_STD_U8LE, {10, 3, 4, 5}, 12);
  msg = error_of([&] { ShardReader r(count); });
  EXPECT_NE(msg.find("[12, 3, 4, 5]"), std::string::npos) << msg;

  // An HDF5 file that is not a shard at all.
  const std::string other = dir / "other.h5";
  H5Fclose(H5Fcreate(other.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  msg = error_of([&] { ShardReader r(other); });
  EXPECT_NE(msg.find("not an agave image shard"), std::string::npos) << msg;
}

TEST(Shard, InspectFindsAFlippedByte) {
  TempDir dir;
  const Manifest m = test::write_synthetic_split(dir.path().string(), "train", {300, 200},
                                                 ImageShape{1, 8, 8}, 32);
  InspectReport ok = inspect(dir.path().string(), true);
  ASSERT_TRUE(ok.ok()) << ok.problems.front();
  ASSERT_EQ(ok.splits.size(), 1u);
  EXPECT_EQ(ok.splits[0].count, 500);
  EXPECT_EQ(ok.splits[0].shards.size(), 2u);
  EXPECT_EQ(ok.splits[0].label_counts, std::vector<int64_t>(10, 50));
  // Mean and std against a direct computation over the same synthetic pixels.
  double s = 0, s2 = 0;
  for (int64_t g = 0; g < 500; ++g) {
    for (int64_t k = 0; k < 64; ++k) {
      const double v = test::pixel(g, k) / 255.0;
      s += v;
      s2 += v * v;
    }
  }
  const double mean = s / 32000, sd = std::sqrt(s2 / 32000 - mean * mean);
  EXPECT_NEAR(ok.splits[0].mean[0], mean, 1e-12);
  EXPECT_NEAR(ok.splits[0].std[0], sd, 1e-9);

  const std::string shard = m.shard_path(m.shards[1]);
  const auto locs = ShardReader(shard).chunk_locations();
  auto bytes = test::read_file(shard);
  bytes[(*locs)[2].offset + 5] ^= 1;
  test::write_file(shard, bytes);
  InspectReport bad = inspect(dir.path().string(), true);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.problems[0].find(shard), std::string::npos) << bad.problems[0];
  EXPECT_NE(bad.problems[0].find("checksum mismatch"), std::string::npos) << bad.problems[0];
  EXPECT_TRUE(inspect(dir.path().string(), false).ok()) << "without verify, bytes are not hashed";
}

}  // namespace
}  // namespace agave::data
