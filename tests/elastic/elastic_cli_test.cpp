// agave_elastic as a user runs it, around a fake mpirun (a script that runs the command once,
// as if it were every rank): the generations' lines, the exclusions, the exit codes.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

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
  std::string run(const std::string& ranks, int restarts, const std::string& plan,
                  int stop_after = 0) {
    const auto d = dir.path().string();
    dir.write("hosts", "a\nb\nc\n");
    dir.write("plan", plan);
    const auto mpirun =
        dir.write("mpirun.sh", "#!/bin/sh\nawk '{print $1}' \"$2\" | tr '\\n' ' ' >> " + d +
                                   "/gens; echo >> " + d + "/gens\nshift 8\nexec \"$@\"\n");
    const auto job = dir.write(
        "job.sh", "#!/bin/sh\ng=$(wc -l < " + d + "/gens)\nset -- $(sed -n \"${g}p\" " + d +
                      "/plan)\ncase $1 in\n"
                      "  ok) echo 0 > $AGAVE_EXIT_FILE ;;\n"
                      "  lose) printf '{\"step\": 23, \"ranks\": [2], \"hosts\": "
                      "[\"c\"]}' > $AGAVE_FAILURE_DIR/r0.json; exit 0 ;;\n"
                      "  code) echo $2 > $AGAVE_EXIT_FILE; exit 1 ;;\n"
                      "  train) trap 'echo 75 > $AGAVE_EXIT_FILE; exit 1' TERM; "
                      "sleep 30 & wait ;;\n"
                      "  *) exit 139 ;;\nesac\n");
    chmod(mpirun.c_str(), 0755);
    chmod(job.c_str(), 0755);
    std::string command = kElastic + " --ranks " + ranks + " --max-restarts " +
                          std::to_string(restarts) +
                          " --hosts hosts --batch 6 --grace 1 --mpirun " + mpirun + " -- " + job;
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
