// The per-image file: written and read back unchanged, and a malformed one refused naming the
// file and line.
#include "analysis/per_image_file.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/analysis/test_files.h"

namespace agave::analysis {
namespace {

TEST(PerImageFile, ReadsBackWhatItWrote) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto f = testing::file("a.csv", {0, 1, 2}, {"elbo_bpd", "latent_use_bpd"},
                               {{3.25, 3.5, 1.0 / 3.0}, {0.125, nan, -0.5}}, 7);
  const std::string text = to_text(f);
  EXPECT_EQ(text.rfind("# agave per-image v1\n", 0), 0u) << text;
  EXPECT_NE(text.find("\nindex,elbo_bpd,latent_use_bpd\n0,3.25,0.125\n1,3.5,nan\n"),
            std::string::npos)
      << text;
  const auto back = parse_per_image("b.csv", text);
  EXPECT_EQ(back.path, "b.csv");
  EXPECT_EQ(back.meta.checkpoint, f.meta.checkpoint);
  EXPECT_EQ(back.meta.step, 10);
  EXPECT_EQ(back.meta.seed, 7u);
  EXPECT_EQ(back.meta.weights, "ema");
  EXPECT_EQ(back.meta.importance_samples, 8);
  EXPECT_EQ(back.meta.test_split, 100);
  EXPECT_EQ(back.columns, f.columns);
  EXPECT_EQ(back.index, f.index);
  EXPECT_NEAR(back.column("elbo_bpd")[2], 1.0 / 3.0, 1e-9);
  EXPECT_TRUE(std::isnan(back.column("latent_use_bpd")[1]));
  EXPECT_THROW(back.column("kl_bpd"), io::BadDataError);
}

// The message of what `text` throws as file x.csv.
std::string refusal(const std::string& text) {
  try {
    parse_per_image("x.csv", text);
  } catch (const io::BadDataError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(PerImageFile, RefusesWhatIsNotOneNamingTheFileAndLine) {
  const std::string head = "# agave per-image v1\n# step=3\nindex,elbo_bpd\n";
  EXPECT_EQ(refusal("index,elbo_bpd\n0,1\n"),
            "x.csv: line 1: the first line must be '# agave per-image v1'");
  EXPECT_EQ(refusal(head + "0,1,2\n"), "x.csv: line 4: 3 fields, the header names 2");
  EXPECT_EQ(refusal(head + "0,abc\n"), "x.csv: line 4: 'abc' is not a number");
  EXPECT_EQ(refusal(head + "0.5,1\n"), "x.csv: line 4: '0.5' is not an integer");
  EXPECT_EQ(refusal("# agave per-image v1\n# step=x\n"), "x.csv: line 2: 'x' is not an integer");
  EXPECT_EQ(refusal("# agave per-image v1\n"), "x.csv: no header row (index,...)");
  EXPECT_EQ(refusal(""), "x.csv: not a per-image file (no '# agave per-image v1')");
  EXPECT_EQ(refusal(head + "0,1\n"), "accepted");
}

TEST(PerImageFile, AFileThatCannotBeReadIsNamed) {
  try {
    read_per_image("/nonexistent/p.csv");
    FAIL() << "read";
  } catch (const io::BadDataError& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/p.csv: cannot be read (no such file?)");
  }
}

}  // namespace
}  // namespace agave::analysis
