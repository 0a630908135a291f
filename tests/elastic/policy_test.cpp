// The pieces of agave_elastic's decision: hostfiles, placement, the rank count, failure reports.
#include <gtest/gtest.h>

#include "elastic/failure_report.h"
#include "elastic/hosts.h"
#include "elastic/rank_choice.h"

namespace {

using namespace agave::elastic;

TEST(ParseHosts, ReadsHostsWithOptionalSlotsAndSkipsCommentsAndBlankLines) {
  const auto hosts =
      parse_hosts("# the cluster\nnode-a slots=4\n\n  node-b  # spare\nnode-c slots=2\n");
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[0].name, "node-a");
  EXPECT_EQ(hosts[0].slots, 4);
  EXPECT_EQ(hosts[1].name, "node-b");
  EXPECT_EQ(hosts[1].slots, 1);
  EXPECT_EQ(hosts[2].slots, 2);
}

TEST(ParseHosts, RejectsWhatIsNotAHostLineNamingIt) {
  for (const char* bad : {"a slots=0", "a slots=x", "a cpus=2", "a slots=2 b", "a slots=2x"}) {
    try {
      parse_hosts(std::string("ok\n") + bad + "\n");
      ADD_FAILURE() << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST(Place, FillsHostsInOrderAndCutsTheLastOnesSlots) {
  const std::vector<Host> hosts = {{"a", 4}, {"b", 4}, {"c", 1}};
  const auto p = place(hosts, 6);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(hostfile(p), "a slots=4\nb slots=2\n");
  EXPECT_EQ(host_of_rank(p, 0), "a");
  EXPECT_EQ(host_of_rank(p, 3), "a");
  EXPECT_EQ(host_of_rank(p, 4), "b");
  EXPECT_EQ(host_of_rank(p, 6), "");
  EXPECT_EQ(names(without(hosts, {"b"})), "a, c");
  EXPECT_EQ(names({}), "none");
}

TEST(ParseRankRange, ReadsMinMaxOrOneCountAndRejectsTheRest) {
  EXPECT_EQ(parse_rank_range("2:3").min, 2);
  EXPECT_EQ(parse_rank_range("2:3").max, 3);
  EXPECT_EQ(parse_rank_range("4").min, 4);
  EXPECT_EQ(parse_rank_range("4").max, 4);
  for (const char* bad : {"", "0:2", "3:2", "a:b", "2:", "2:3:4", "-1:2"}) {
    EXPECT_THROW(parse_rank_range(bad), std::invalid_argument) << bad;
  }
}

TEST(ChooseRanks, TakesTheMostRanksThatDivideTheBatchWithinTheRange) {
  EXPECT_EQ(choose_ranks({2, 3}, 3, 6), 3);
  EXPECT_EQ(choose_ranks({2, 3}, 2, 6), 2);             // a host lost
  EXPECT_EQ(choose_ranks({1, 8}, 8, 6), 6);             // 8 and 7 do not divide 6
  EXPECT_EQ(choose_ranks({1, 8}, 5, 8), 4);             // nor 5
  EXPECT_EQ(choose_ranks({2, 3}, 1, 6), std::nullopt);  // below MIN
  EXPECT_EQ(choose_ranks({4, 5}, 8, 6), std::nullopt);  // none divides
  EXPECT_EQ(choose_ranks({1, 4}, 3, 0), 3);             // batch unknown: any count
}

TEST(FailureFileName, OnlyTheFinalNameOfAReportCounts) {
  EXPECT_EQ(failure_file_name(3), "failure-rank-3.json");
  EXPECT_TRUE(is_failure_file_name(failure_file_name(12)));
  EXPECT_FALSE(is_failure_file_name("failure-rank-3.json.tmp.4242"));
  EXPECT_FALSE(is_failure_file_name("failure-rank-.json"));
  EXPECT_FALSE(is_failure_file_name("notes.txt"));
}

TEST(FailureReport, RoundTripsThroughJson) {
  FailureReport r{1, 23, "bucket 1/2 all-reduce", {2}, {"node-c"}, "the line"};
  const auto back = parse_failure_report(to_json(r));
  EXPECT_EQ(back.reporter, 1);
  EXPECT_EQ(back.step, 23);
  EXPECT_EQ(back.collective, r.collective);
  EXPECT_EQ(back.ranks, r.ranks);
  EXPECT_EQ(back.hosts, r.hosts);
  EXPECT_EQ(back.line, r.line);
  EXPECT_THROW(parse_failure_report("{not json"), std::invalid_argument);
}

// The two forms of cluster's timeout lines (cluster/job_channel.cpp: stall_report and
// wait_while_alive), as the ranks print them.
TEST(FailureFromTimeoutLine, NamesTheRanksThatDidNotArriveInAStallReport) {
  const auto r = failure_from_timeout_line(
      "rank 0 (host-a), rank 0 of 3 of its run: collective timeout: bucket 1/2 all-reduce did "
      "not complete within 5.0 s; did not arrive: rank 2 (host-c) (no answer: stopped or hung); "
      "1 other rank(s) waiting in it too; aborting the job",
      0);
  EXPECT_EQ(r.collective, "bucket 1/2 all-reduce");
  EXPECT_EQ(r.ranks, std::vector<int>{2});
  EXPECT_EQ(r.hosts, std::vector<std::string>{"host-c"});
}

TEST(FailureFromTimeoutLine, NamesTheRanksThatDidNotAnswerALivenessWait) {
  const auto r = failure_from_timeout_line(
      "rank 1 (b): end barrier waited 6.1 s; rank 0 (a), rank 2 (c) did not answer (stopped or "
      "hung); aborting the job",
      1);
  EXPECT_EQ(r.collective, "end barrier");
  EXPECT_EQ(r.ranks, (std::vector<int>{0, 2}));
  EXPECT_EQ(r.hosts, (std::vector<std::string>{"a", "c"}));
}

TEST(FailureFromTimeoutLine, KnowsNobodyWhenTheLineNamesNoSilentRank) {
  const auto r = failure_from_timeout_line(
      "MPI_Comm_split did not complete within 5 s (cluster.timeout_seconds): a rank of the job "
      "did not start, died or stopped responding; aborting the job",
      0);
  EXPECT_TRUE(r.ranks.empty());
  EXPECT_TRUE(r.hosts.empty());
}

FailureReport report_of(int reporter, std::vector<int> ranks) {
  FailureReport r;
  r.reporter = reporter;
  r.ranks = ranks;
  for (int rank : ranks) r.hosts.push_back("h" + std::to_string(rank));
  return r;
}

// A partition of {0, 1} from {2}: each side names the other; the majority names rank 2.
TEST(AgreedFailure, TakesTheRanksMoreThanHalfTheReportersNamed) {
  const auto r = agreed_failure({report_of(0, {2}), report_of(2, {0, 1}), report_of(1, {2})});
  EXPECT_EQ(r.ranks, std::vector<int>{2});
  EXPECT_EQ(r.hosts, std::vector<std::string>{"h2"});
  EXPECT_EQ(agreed_failure({report_of(0, {3})}).ranks, std::vector<int>{3});  // a dead rank
  EXPECT_TRUE(
      agreed_failure({report_of(0, {1}), report_of(1, {0})}).ranks.empty());  // an even split
  EXPECT_TRUE(agreed_failure({}).ranks.empty());
}

}  // namespace
