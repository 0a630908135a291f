#include "elastic/failure_report.h"

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

namespace agave::elastic {
namespace {

// "rank 3 (node-7): bucket 1/2 all-reduce waited 5.0 s; ..." or
// "rank 0 (a), rank 0 of 3 of its run: collective timeout: bucket 1/2 all-reduce did not ...".
std::string collective_of(const std::string& line) {
  static const std::regex timeout(R"(collective timeout: (.*?) did not complete)");
  static const std::regex waited(R"(^rank \d+ \([^)]*\): (.*?) waited )");
  std::smatch m;
  if (std::regex_search(line, m, timeout) || std::regex_search(line, m, waited)) return m[1];
  return "";
}

}  // namespace

std::string failure_file_name(int reporter) {
  return "failure-rank-" + std::to_string(reporter) + ".json";
}

bool is_failure_file_name(const std::string& name) {
  static const std::regex pattern(R"(failure-rank-[0-9]+\.json)");
  return std::regex_match(name, pattern);
}

std::string to_json(const FailureReport& r) {
  nlohmann::json j = {{"reporter", r.reporter}, {"step", r.step},   {"collective", r.collective},
                      {"ranks", r.ranks},       {"hosts", r.hosts}, {"line", r.line}};
  return j.dump(2) + "\n";
}

FailureReport parse_failure_report(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    FailureReport r;
    r.reporter = j.value("reporter", -1);
    r.step = j.value("step", int64_t{-1});
    r.collective = j.value("collective", std::string());
    r.ranks = j.value("ranks", std::vector<int>());
    r.hosts = j.value("hosts", std::vector<std::string>());
    r.line = j.value("line", std::string());
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("failure report: ") + e.what());
  }
}

FailureReport failure_from_timeout_line(const std::string& line, int self) {
  FailureReport r;
  r.line = line;
  r.collective = collective_of(line);
  // Only the ranks named as silent: after "did not arrive:" or before "did not answer".
  static const std::regex silent_list(
      R"(did not arrive: (.*?) \(no answer|; ([^;]*?) did not answer)");
  static const std::regex named(R"(rank (\d+) \(([^)]*)\))");
  std::smatch list;
  if (!std::regex_search(line, list, silent_list)) return r;
  const std::string names = list[1].matched ? list[1].str() : list[2].str();
  for (auto it = std::sregex_iterator(names.begin(), names.end(), named);
       it != std::sregex_iterator(); ++it) {
    const int rank = std::stoi((*it)[1]);
    if (rank == self) continue;
    r.ranks.push_back(rank);
    r.hosts.push_back((*it)[2]);
  }
  return r;
}

FailureReport agreed_failure(const std::vector<FailureReport>& reports) {
  FailureReport out;
  if (reports.empty()) return out;
  out.step = reports.front().step;
  out.collective = reports.front().collective;
  out.line = reports.front().line;
  std::map<int, int> votes;
  std::map<int, std::string> host_of;
  for (const auto& r : reports) {
    for (size_t i = 0; i < r.ranks.size(); ++i) {
      ++votes[r.ranks[i]];
      if (i < r.hosts.size()) host_of[r.ranks[i]] = r.hosts[i];
    }
  }
  for (const auto& [rank, n] : votes) {
    if (2 * n <= static_cast<int>(reports.size())) continue;
    out.ranks.push_back(rank);
    out.hosts.push_back(host_of.count(rank) ? host_of[rank] : "?");
  }
  return out;
}

}  // namespace agave::elastic
