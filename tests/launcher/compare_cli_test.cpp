// agave_compare as users run it, on small per-image files written here: the report on stdout and
// in the files asked for, and the refusals (files of other images or K, a missing or malformed
// file, one arm alone): exit code 2, one line naming the file.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tests/common/process.h"
#include "tests/common/test_files.h"

namespace agave::testing {
namespace {

const std::string kCompare = std::string(AGAVE_BIN_DIR) + "/agave_compare";

// A per-image file of images 0, 1, 2 with column x = `x` and latent_use_bpd = `use`.
std::string per_image(const std::string& x, const std::string& use, int k = 8,
                      const std::string& seed = "1", const std::string& rows = "0,1,2") {
  std::string text = "# agave per-image v1\n# checkpoint=c\n# step=10\n# seed=" + seed +
                     "\n# weights=ema\n# importance_samples=" + std::to_string(k) +
                     "\n# test_split=100\nindex,x,latent_use_bpd\n";
  std::istringstream xs(x), us(use), is(rows);
  std::string a, b, i;
  while (std::getline(xs, a, ' ') && std::getline(us, b, ' ') && std::getline(is, i, ',')) {
    text += i + "," + a + "," + b + "\n";
  }
  return text;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class CompareCli : public ::testing::Test {
 protected:
  void SetUp() override {
    a1_ = dir_.write("a1.csv", per_image("1 2 3", "0 0 0"));
    a2_ = dir_.write("a2.csv", per_image("2 2 2", "0 0 0", 8, "2"));
    b1_ = dir_.write("b1.csv", per_image("1.1 2.2 3.3", "0.5 nan 0.5"));
    b2_ = dir_.write("b2.csv", per_image("2.3 2.3 2.3", "0.5 0.5 0.5", 8, "2"));
  }
  std::string arms() const {
    return " --arm 'lambda=1' " + a1_ + " " + a2_ + " --arm 'lambda=12' " + b1_ + " " + b2_;
  }
  TempDir dir_;
  std::string a1_, a2_, b1_, b2_;
};

TEST_F(CompareCli, PrintsAndWritesThePairedReport) {
  const auto md = dir_ / "paired.md", csv = dir_ / "paired.csv", arms_csv = dir_ / "arms.csv";
  const auto r =
      sh(kCompare + arms() + " --markdown " + md + " --csv " + csv + " --arms-csv " + arms_csv);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("2 arms × 2 seed(s), the same 3 test images, IW bound K = 8"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("### lambda=12 − lambda=1"), std::string::npos) << r.output;
  // x: seed 1 +0.2 ± 0.0577, seed 2 +0.3 ± 0; across seeds 0.25 ± 0.05, both positive.
  EXPECT_NE(r.output.find("| x | +0.2000 ± 0.0577 | +0.3000 ± 0.0000 | +0.2500 ± 0.0500 (+0.2000 "
                          ".. +0.3000) | 2 of 2 |"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("| latent_use_bpd | +0.5000 ± 0.0000 |"), std::string::npos)
      << r.output;  // seed 1: the image without a number is left out
  EXPECT_NE(read(md).find("### lambda=12 − lambda=1"), std::string::npos);
  EXPECT_NE(read(csv).find("\npaired_seeds,lambda=12,lambda=1,all,x,0.25,0.05,2,0.2,0.3,2,2\n"),
            std::string::npos)
      << read(csv);
  EXPECT_EQ(read(arms_csv).substr(0, read(arms_csv).find('\n')),
            "arm,x,x_stderr,latent_use_bpd,latent_use_bpd_stderr");
  // --columns picks the columns.
  const auto only = sh(kCompare + arms() + " --columns x");
  ASSERT_EQ(only.code, 0) << only.output;
  EXPECT_EQ(only.output.find("latent_use_bpd"), std::string::npos) << only.output;
}

TEST_F(CompareCli, RefusesFilesThatCannotBePairedNamingThem) {
  const auto other_k = dir_.write("k150.csv", per_image("1 2 3", "0 0 0", 150));
  auto r = sh(kCompare + " --arm a " + a1_ + " --arm b " + other_k);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(r.output, "agave_compare: error: cannot pair " + a1_ + " and " + other_k +
                          ": IW bounds with K = 8 and K = 150\n");
  const auto other_images = dir_.write("other.csv", per_image("1 2 3", "0 0 0", 8, "1", "0,1,5"));
  r = sh(kCompare + " --arm a " + a1_ + " --arm b " + other_images);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("cannot pair " + a1_ + " and " + other_images +
                          ": row 3 is test image 2 in one, 5 in the other"),
            std::string::npos)
      << r.output;
  const auto fewer = dir_.write("fewer.csv", per_image("1 2", "0 0", 8, "1", "0,1"));
  r = sh(kCompare + " --arm a " + a1_ + " --arm b " + fewer);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("3 and 2 test images (another test subset)"), std::string::npos)
      << r.output;
}

TEST_F(CompareCli, RefusesAMissingOrMalformedFileAndASingleArm) {
  auto r = sh(kCompare + " --arm a " + a1_ + " --arm b " + dir_ / "missing.csv");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(r.output, "agave_compare: error: " + (dir_ / "missing.csv") +
                          ": cannot be read (no such file?)\n");
  const auto bad = dir_.write("bad.csv", per_image("1 2 3", "0 0 0") + "3,x,0\n");
  r = sh(kCompare + " --arm a " + a1_ + " --arm b " + bad);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(r.output, "agave_compare: error: " + bad + ": line 12: 'x' is not a number\n");
  r = sh(kCompare + " --arm a " + a1_);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("a comparison needs two arms or more"), std::string::npos) << r.output;
  r = sh(kCompare + " --arm a --arm b " + a1_);  // a name without files
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--arm a: an arm is a name and its files, one per seed"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace agave::testing
