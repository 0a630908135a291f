#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>

#include "data/convert.h"
#include "data/errors.h"
#include "data/inspect.h"
#include "data/shard.h"
#include "data/sources.h"
#include "tests/data/test_util.h"

namespace agave::data {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

// Independent IDX decoding for the comparison: whole gz file through zlib's inflate, no agave code.
std::vector<uint8_t> gunzip(const std::string& path) {
  const auto z = test::read_file(path);
  std::vector<uint8_t> out;
  z_stream s{};
  inflateInit2(&s, 16 + MAX_WBITS);
  s.next_in = const_cast<Bytef*>(z.data());
  s.avail_in = static_cast<uInt>(z.size());
  std::vector<uint8_t> buf(1 << 20);
  int rc;
  do {
    s.next_out = buf.data();
    s.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&s, Z_NO_FLUSH);
    out.insert(out.end(), buf.data(), buf.data() + (buf.size() - s.avail_out));
  } while (rc == Z_OK);
  inflateEnd(&s);
  return out;
}

void gzip_to(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb1");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Reads image g of a converted split through the shard files listed by its manifest.
std::vector<uint8_t> shard_image(const Manifest& m, int64_t g) {
  for (const auto& s : m.shards) {
    if (g < s.first_index + s.count) {
      ShardReader r(m.shard_path(s));
      const int64_t bytes = r.info().image_bytes();
      std::vector<uint8_t> out(static_cast<size_t>(bytes));
      r.read_images(g - s.first_index, 1, out.data());
      return out;
    }
  }
  return {};
}

TEST(Convert, FashionMnistIsPixelExact) {
  TempDir out;
  ConvertOptions c;
  c.source = test::kFashionMnist;
  c.output = out.path().string();
  c.images_per_shard = 25000;
  int64_t last = 0;
  const auto manifests = convert(c, [&](const Progress& p) { last = p.done; });
  ASSERT_EQ(manifests.size(), 2u);
  const Manifest& train = manifests[0];
  EXPECT_EQ(train.dataset, "fashion_mnist");
  EXPECT_EQ(train.count, 60000);
  ASSERT_EQ(train.shards.size(), 3u);
  EXPECT_EQ(train.shards[2].count, 10000);
  EXPECT_EQ(train.shape.channels, 1);
  EXPECT_EQ(train.shape.height, 28);
  EXPECT_EQ(manifests[1].count, 10000);
  EXPECT_EQ(last, 10000) << "progress reaches the end of the last split";
  EXPECT_EQ(files_in(out.path()),
            (std::vector<std::string>{"test-00000-of-00001.h5", "test.manifest.json",
                                      "train-00000-of-00003.h5", "train-00001-of-00003.h5",
                                      "train-00002-of-00003.h5", "train.manifest.json"}));

  const auto images = gunzip(std::string(test::kFashionMnist) + "/train-images-idx3-ubyte.gz");
  const auto labels = gunzip(std::string(test::kFashionMnist) + "/train-labels-idx1-ubyte.gz");
  ASSERT_EQ(images.size(), 16u + 60000u * 784u);
  for (int64_t g : {0L, 1L, 24999L, 25000L, 33333L, 59999L}) {
    const auto img = shard_image(train, g);
    ASSERT_EQ(img.size(), 784u);
    EXPECT_EQ(0, std::memcmp(img.data(), images.data() + 16 + g * 784, 784)) << "image " << g;
  }
  ShardReader last_shard(train.shard_path(train.shards[2]));
  const auto l = last_shard.read_labels();
  EXPECT_EQ(0, std::memcmp(l.data(), labels.data() + 8 + 50000, 10000));

  // Every byte, from Python's gzip and h5py: nothing shared with the code under test.
  if (test::have_h5py()) {
    const std::string script =
        "import gzip, h5py, json, numpy as np, sys\n"
        "src, out = sys.argv[1], sys.argv[2]\n"
        "for split, stem in (('train', 'train'), ('test', 't10k')):\n"
        "  x = np.frombuffer(gzip.open(f'{src}/{stem}-images-idx3-ubyte.gz').read()[16:], "
        "np.uint8)\n"
        "  y = np.frombuffer(gzip.open(f'{src}/{stem}-labels-idx1-ubyte.gz').read()[8:], "
        "np.uint8)\n"
        "  m = json.load(open(f'{out}/{split}.manifest.json'))\n"
        "  xs = np.concatenate([h5py.File(f\"{out}/{s['file']}\", 'r')['images'][()] for s in "
        "m['shards']])\n"
        "  ys = np.concatenate([h5py.File(f\"{out}/{s['file']}\", 'r')['labels'][()] for s in "
        "m['shards']])\n"
        "  assert np.array_equal(xs.reshape(-1), x), split\n"
        "  assert np.array_equal(ys, y), split\n"
        "print('ok')\n";
    test::write_file(out / "check.py", std::vector<uint8_t>(script.begin(), script.end()));
    std::string log;
    EXPECT_EQ(test::run_command("/usr/bin/python3 " + (out / "check.py") + " " +
                                    test::kFashionMnist + " " + out.path().string(),
                                &log),
              0)
        << log;
  }
}

TEST(Convert, Cifar10BatchesArePixelExactAndMatchPublishedStats) {
  AGAVE_REQUIRE_CIFAR();
  TempDir out;
  ConvertOptions c;
  c.source = test::cifar_dir();
  c.output = out.path().string();
  const auto manifests = convert(c);
  ASSERT_EQ(manifests.size(), 2u);
  EXPECT_EQ(manifests[0].dataset, "cifar10");
  EXPECT_EQ(manifests[0].count, 50000);
  EXPECT_EQ(manifests[0].shards.size(), 5u);
  EXPECT_EQ(manifests[1].count, 10000);

  // Records straight from the .bin files: label byte, then 3072 planar pixels.
  for (int64_t g : {0L, 9999L, 10000L, 31415L, 49999L}) {
    const std::string bin =
        test::cifar_dir() + "/data_batch_" + std::to_string(g / 10000 + 1) + ".bin";
    std::FILE* f = std::fopen(bin.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    std::vector<uint8_t> rec(3073);
    std::fseek(f, static_cast<long>((g % 10000) * 3073), SEEK_SET);
    ASSERT_EQ(std::fread(rec.data(), 1, 3073, f), 3073u);
    std::fclose(f);
    const auto img = shard_image(manifests[0], g);
    EXPECT_EQ(0, std::memcmp(img.data(), rec.data() + 1, 3072)) << "image " << g;
    ShardReader r(manifests[0].shard_path(manifests[0].shards[g / 10000]));
    EXPECT_EQ(r.read_labels()[g % 10000], rec[0]);
  }

  // shared/data/cifar10/README.md lists the official per-channel statistics.
  const InspectReport report = inspect(manifests[0].path, true);
  ASSERT_TRUE(report.ok()) << report.problems.front();
  const auto& s = report.splits[0];
  EXPECT_NEAR(s.mean[0], 0.491399678615203, 1e-12);
  EXPECT_NEAR(s.mean[1], 0.482158408394607, 1e-12);
  EXPECT_NEAR(s.mean[2], 0.446530914445464, 1e-12);
  EXPECT_NEAR(s.std[0], 0.247032232463282, 1e-12);
  EXPECT_NEAR(s.std[2], 0.261587841727964, 1e-12);
  EXPECT_EQ(s.label_counts, std::vector<int64_t>(10, 5000));
}

// A small cifar-10-binary.tar.gz made with tar(1): the first records of each official batch,
// laid out like the official archive (cifar-10-batches-bin/...), with an unrelated member first.
std::string make_cifar_tar(const TempDir& dir, int64_t records) {
  const fs::path stage = dir.path() / "stage" / "cifar-10-batches-bin";
  fs::create_directories(stage);
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
    auto bytes = test::read_file(test::cifar_dir() + "/" + name);
    bytes.resize(static_cast<size_t>(records * 3073));
    test::write_file((stage / name).string(), bytes);
  }
  test::write_file((stage / "readme.html").string(), std::vector<uint8_t>(700, 'r'));
  const std::string tar = dir / "cifar-10-binary.tar.gz";
  std::string log;
  EXPECT_EQ(
      test::run_command("tar -czf " + tar + " -C " + (dir.path() / "stage").string() +
                            " cifar-10-batches-bin/readme.html cifar-10-batches-bin/test_batch.bin"
                            " cifar-10-batches-bin/data_batch_2.bin"
                            " cifar-10-batches-bin/data_batch_1.bin"
                            " cifar-10-batches-bin/data_batch_3.bin"
                            " cifar-10-batches-bin/data_batch_4.bin"
                            " cifar-10-batches-bin/data_batch_5.bin",
                        &log),
      0)
      << log;
  return tar;
}

TEST(Convert, Cifar10TarGzMatchesTheBatches) {
  AGAVE_REQUIRE_CIFAR();
  TempDir dir;
  const std::string tar = make_cifar_tar(dir, 40);
  ConvertOptions c;
  c.source = tar;
  c.output = dir / "out";
  c.images_per_shard = 64;
  c.compression = 3;
  const auto manifests = convert(c);
  ASSERT_EQ(manifests[0].count, 200);
  ASSERT_EQ(manifests[0].shards.size(), 4u);
  EXPECT_EQ(manifests[1].count, 40);
  // Train order is batch 1..5 whatever the archive order.
  for (int64_t g : {0L, 39L, 40L, 120L, 199L}) {
    const auto bin =
        test::read_file(test::cifar_dir() + "/data_batch_" + std::to_string(g / 40 + 1) + ".bin");
    const auto img = shard_image(manifests[0], g);
    EXPECT_EQ(0, std::memcmp(img.data(), bin.data() + (g % 40) * 3073 + 1, 3072)) << g;
  }
  EXPECT_TRUE(inspect(c.output, true).ok());

  // A truncated archive: one clear error, nothing written.
  auto bytes = test::read_file(tar);
  bytes.resize(bytes.size() / 2);
  const std::string cut = dir / "cut/cifar-10-binary.tar.gz";
  fs::create_directories(dir.path() / "cut");
  test::write_file(cut, bytes);
  c.source = cut;
  c.output = dir / "out2";
  const std::string msg = test::data_error_of([&] { convert(c); });  // a truncated archive
  EXPECT_NE(msg.find(cut), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir / "out2/train.manifest.json"));
}

TEST(Convert, WrongSizeCifarFileFailsBeforeWritingAnything) {
  AGAVE_REQUIRE_CIFAR();
  TempDir dir;
  const fs::path src = dir.path() / "src";
  fs::create_directories(src);
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
    auto bytes = test::read_file(test::cifar_dir() + "/" + name);
    bytes.resize(std::string(name) == "data_batch_3.bin" ? 3073 * 5 + 100 : 3073 * 5);
    test::write_file((src / name).string(), bytes);
  }
  ConvertOptions c;
  c.source = src.string();
  c.output = dir / "out";
  const std::string msg = test::data_error_of([&] { convert(c); });
  EXPECT_NE(msg.find((src / "data_batch_3.bin").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("3073-byte"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir / "out"));
  fs::remove(src / "test_batch.bin");
  EXPECT_THROW(convert(c), io::DataError);
}

TEST(Convert, InterruptedConversionLeavesNothingThatLooksComplete) {
  TempDir dir;
  const fs::path src = dir.path() / "src";
  fs::create_directories(src);
  auto images = gunzip(std::string(test::kFashionMnist) + "/t10k-images-idx3-ubyte.gz");
  auto labels = gunzip(std::string(test::kFashionMnist) + "/t10k-labels-idx1-ubyte.gz");
  // A good test split, and a train split whose image file stops half way through.
  gzip_to((src / "t10k-images-idx3-ubyte.gz").string(), images);
  gzip_to((src / "t10k-labels-idx1-ubyte.gz").string(), labels);
  images.resize(16 + 5000 * 784);
  gzip_to((src / "train-images-idx3-ubyte.gz").string(), images);
  gzip_to((src / "train-labels-idx1-ubyte.gz").string(), labels);

  const std::string out = dir / "out";
  // An earlier, complete conversion lives in the output folder: it must not survive as if the
  // new one had succeeded.
  test::write_synthetic_split(dir.path().string(), "train", {10}, ImageShape{1, 28, 28}, 4);
  fs::create_directories(out);
  fs::copy(dir / "train.manifest.json", out + "/train.manifest.json");
  fs::copy(dir / "train-0.h5", out + "/train-00000-of-00001.h5");

  ConvertOptions c;
  c.source = src.string();
  c.output = out;
  c.images_per_shard = 2000;
  const std::string msg = test::data_error_of([&] { convert(c); });  // a truncated IDX file
  EXPECT_NE(msg.find("train-images-idx3-ubyte.gz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_EQ(files_in(out), std::vector<std::string>{}) << "no shard, tmp file or manifest left";
  EXPECT_FALSE(shards_ready(out, Dataset::kFashionMnist));
}

TEST(Convert, IdxOfWrongSizeOrMagicIsNamed) {
  TempDir dir;
  auto images = gunzip(std::string(test::kFashionMnist) + "/t10k-images-idx3-ubyte.gz");
  auto labels = gunzip(std::string(test::kFashionMnist) + "/t10k-labels-idx1-ubyte.gz");
  for (const char* stem : {"train", "t10k"}) {
    test::write_file(dir / (std::string(stem) + "-labels-idx1-ubyte"), labels);
  }
  auto short_images = images;
  short_images.resize(images.size() - 1);
  test::write_file(dir / "train-images-idx3-ubyte", short_images);
  test::write_file(dir / "t10k-images-idx3-ubyte", images);
  ConvertOptions c;
  c.dataset = Dataset::kFashionMnist;
  c.source = dir.path().string();
  c.output = dir / "out";
  const std::string short_file = test::data_error_of([&] { convert(c); });
  EXPECT_EQ(short_file.rfind(dir / "train-images-idx3-ubyte", 0), 0u) << short_file;
  EXPECT_NE(short_file.find("size"), std::string::npos) << short_file;
  images[3] = 0x01;  // magic 0x801: a label file where images belong
  test::write_file(dir / "train-images-idx3-ubyte", images);
  const std::string label_file = test::data_error_of([&] { convert(c); });
  EXPECT_NE(label_file.find("not an IDX image file"), std::string::npos) << label_file;
}

TEST(Convert, EnsureShardsConvertsOnce) {
  TempDir dir;
  DataOptions o;
  o.dataset = Dataset::kFashionMnist;
  o.source = test::kFashionMnist;
  o.shards = dir / "cache";
  o.images_per_shard = 30000;
  int calls = 0;
  EXPECT_EQ(ensure_shards(o, [&](const Progress&) { ++calls; }), o.shards);
  EXPECT_GT(calls, 0);
  EXPECT_TRUE(shards_ready(o.shards, Dataset::kFashionMnist));
  const auto stamp = fs::last_write_time(o.shards + "/train-00000-of-00002.h5");
  calls = 0;
  ensure_shards(o, [&](const Progress&) { ++calls; });
  EXPECT_EQ(calls, 0) << "shards present: no second conversion";
  EXPECT_EQ(fs::last_write_time(o.shards + "/train-00000-of-00002.h5"), stamp);

  o.dataset = Dataset::kCifar10;
  const std::string other = test::data_error_of([&] { ensure_shards(o); });
  EXPECT_NE(other.find("holds fashion_mnist"), std::string::npos) << other;
}

TEST(Convert, UnknownSourceIsOneClearError) {
  TempDir dir;
  ConvertOptions c;
  c.source = dir.path().string();
  c.output = dir / "out";
  const std::string unknown = test::data_error_of([&] { convert(c); });
  EXPECT_NE(unknown.find("cannot tell the data set"), std::string::npos) << unknown;
  c.source = dir / "missing";
  EXPECT_THROW(convert(c), io::DataError);
}

}  // namespace
}  // namespace agave::data
