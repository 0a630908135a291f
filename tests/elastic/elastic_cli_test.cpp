// agave_elastic as a user runs it, around a fake mpirun (a script that runs the command once,
// as if it were every rank): the generations' lines, the exclusions, the exit codes.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "tests/common/ports.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"

namespace {

using agave::testing::count_of;
using agave::testing::sh;
using agave::testing::TempDir;

const std::string kElastic = std::string(AGAVE_BIN_DIR) + "/agave_elastic";

// The job of generation g (counted in `gens`) does what `plan` says at line g: "ok", "fail",
// "lose c" (a failure report naming rank 2 on host c), "code N" (agreed code N, mpirun says 1).
struct Cli {
  TempDir dir;
  // `stop_after`: seconds after which agave_elastic gets SIGTERM (0: none).
  // `extra`: more agave_elastic arguments.
  std::string run(const std::string& ranks, int restarts, const std::string& plan,
                  int stop_after = 0, const std::string& extra = "") {
    const auto d = dir.path().string();
    dir.write("hosts", "a\nb\nc\n");
    dir.write("plan", plan);
    const auto mpirun =
        dir.write("mpirun.sh", "#!/bin/sh\nawk '{print $1}' \"$2\" | tr '\\n' ' ' >> " + d +
                                   "/gens; echo >> " + d + "/gens\nshift 10\nexec \"$@\"\n");
    const auto job = dir.write(
        "job.sh", "#!/bin/sh\ng=$(wc -l < " + d + "/gens)\nset -- $(sed -n \"${g}p\" " + d +
                      "/plan)\ncase $1 in\n"
                      "  ok) echo 0 > $AGAVE_EXIT_FILE ;;\n"
                      "  lose) printf '{\"step\": 23, \"ranks\": [2], \"hosts\": "
                      "[\"c\"]}' > $AGAVE_FAILURE_DIR/failure-rank-0.json; exit 0 ;;\n"
                      "  code) echo $2 > $AGAVE_EXIT_FILE; exit 1 ;;\n"
                      "  scrape) curl -sf http://127.0.0.1:$2/metrics > " +
                      d +
                      "/scraped-$g && echo 0 > $AGAVE_EXIT_FILE ;;\n"
                      "  train) trap 'echo 75 > $AGAVE_EXIT_FILE; exit 1' TERM; "
                      "sleep 30 & wait ;;\n"
                      "  *) exit 139 ;;\nesac\n");
    chmod(mpirun.c_str(), 0755);
    chmod(job.c_str(), 0755);
    std::string command =
        kElastic + " --ranks " + ranks + " --max-restarts " + std::to_string(restarts) +
        " --hosts hosts --batch 6 --grace 1 --mpirun " + mpirun + " " + extra + " -- " + job;
    if (stop_after > 0) {
      command += " 2>&1 & p=$!; sleep " + std::to_string(stop_after) + "; kill -TERM $p; wait $p";
    }
    const auto r = sh("cd " + d + " && " + command);
    code = r.code;
    return r.output;
  }
  int code = -1;
};

TEST(AgaveElastic, ALostHostIsDroppedAndTheJobFinishesOnTheRest) {
  Cli cli;
  const auto out = cli.run("2:3", 1, "lose c\nok\n");
  EXPECT_EQ(cli.code, 0) << out;
  EXPECT_EQ(count_of(out, "\n"), 2u) << out;
  EXPECT_NE(out.find("agave_elastic: generation 2: hosts a, b (excluded: c), 2 rank(s), "
                     "resuming from auto; previous: generation 1 failed: rank 2 (c) did not "
                     "answer at step 23"),
            std::string::npos)
      << out;
  // The state folder (hostfiles, exit codes, reports) is gone.
  EXPECT_EQ(sh("ls -A " + cli.dir.path().string() + " | grep -c agave-elastic").output, "0\n");
}

// The agave_elastic_ names in `text`.
std::set<std::string> elastic_families(const std::string& text) {
  std::set<std::string> named;
  const std::regex name(R"(\bagave_elastic_[a-z_]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator();
       ++it) {
    named.insert(it->str());
  }
  return named;
}

std::string docs_metrics() {
  std::ifstream in(std::string(AGAVE_SOURCE_DIR) + "/docs/metrics.md");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// What Prometheus would see during generation 3, after a lost host and a failed mpirun; and
// promtool accepts it.
TEST(AgaveElastic, ServesItsGenerationAndRestartsByCause) {
  Cli cli;
  const int port = agave::testing::free_port();
  ASSERT_GT(port, 0);
  const auto p = std::to_string(port);
  const auto out = cli.run("1:3", 5, "lose c\nfail\nscrape " + p + "\n", 0, "--metrics-port " + p);
  EXPECT_EQ(cli.code, 0) << out;
  EXPECT_NE(out.find("agave_elastic: Prometheus metrics at http://127.0.0.1:" + p + "/metrics"),
            std::string::npos)
      << out;
  const auto scraped = cli.dir.path() / "scraped-3";
  const auto text = sh("cat " + scraped.string()).output;
  for (const char* series :
       {"agave_elastic_generation 3\n", "agave_elastic_ranks 2\n",
        "agave_elastic_excluded_hosts 1\n", "agave_elastic_restarts_total{cause=\"peer_lost\"} 1\n",
        "agave_elastic_restarts_total{cause=\"mpirun_failed\"} 1\n",
        "agave_elastic_restarts_total{cause=\"job_failed\"} 0\n"}) {
    EXPECT_NE(text.find(series), std::string::npos) << series << " not in:\n" << text;
  }
  const auto lint = sh("promtool check metrics < " + scraped.string());
  EXPECT_EQ(lint.code, 0) << lint.output;
  // docs/metrics.md documents every family served, and no other.
  EXPECT_EQ(elastic_families(docs_metrics()), elastic_families(text));
}

TEST(AgaveElastic, AMetricsPortInUseEndsWithOneLineBeforeAnyGeneration) {
  Cli cli;
  const agave::testing::BusyPort busy;
  const auto p = std::to_string(busy.port);
  const auto out = cli.run("1:3", 5, "ok\n", 0, "--metrics-port " + p);
  EXPECT_NE(cli.code, 0) << out;
  EXPECT_NE(out.find("127.0.0.1:" + p), std::string::npos) << out;
  EXPECT_EQ(count_of(out, "generation "), 0u) << out;
}

TEST(AgaveElastic, BelowTheMinimumEndsNonZeroWithOneLine) {
  Cli cli;
  const auto out = cli.run("3:3", 5, "lose c\nok\n");
  EXPECT_EQ(cli.code, 1) << out;
  EXPECT_EQ(count_of(out, "agave_elastic: error:"), 1u) << out;
  EXPECT_NE(out.find("live hosts a, b (excluded: c) hold 2 slot(s)"), std::string::npos) << out;
}

TEST(AgaveElastic, AnExhaustedBudgetEndsNonZeroWithOneLine) {
  Cli cli;
  const auto out = cli.run("1:3", 2, "fail\nfail\nfail\nok\n");
  EXPECT_EQ(cli.code, 1) << out;
  EXPECT_NE(out.find("agave_elastic: error: restart budget of 2 spent; generation 3 failed: "
                     "mpirun exited 139 without an agreed exit code\n"),
            std::string::npos)
      << out;
}

TEST(AgaveElastic, AConfigErrorAndAStopPassThroughUnrestarted) {
  for (const char* code : {"2", "75"}) {
    Cli cli;
    const auto out = cli.run("1:3", 5, std::string("code ") + code + "\nok\n");
    EXPECT_EQ(std::to_string(cli.code), code) << out;
    EXPECT_EQ(count_of(out, "generation "), 1u) << out;
  }
}

// A preemption's SIGTERM reaches the job through mpirun; the job checkpoints and agrees on 75.
TEST(AgaveElastic, AStopSignalIsPassedOnAndNotRestarted) {
  Cli cli;
  const auto out = cli.run("1:3", 5, "train\nok\n", 2);
  EXPECT_EQ(cli.code, 75) << out;
  EXPECT_EQ(count_of(out, "generation "), 1u) << out;
}

TEST(AgaveElastic, ArgumentErrorsExitTwoWithOneLine) {
  EXPECT_EQ(sh(kElastic + " --ranks 3:2 --max-restarts 1 --hosts /dev/null --batch 6 -- true").code,
            2);
  const auto r = sh(kElastic + " --ranks 2 --max-restarts 1 --batch 6 -- true");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("give --hosts FILE or --discover CMD"), std::string::npos) << r.output;
}

}  // namespace
