#pragma once
// The hosts a generation may run on: Open MPI hostfile lines `host [slots=N]`, from a file or a
// discovery command's output, less the hosts a failure report named.
#include <set>
#include <string>
#include <vector>

namespace agave::elastic {

struct Host {
  std::string name;
  int slots = 1;
};

// One host a line; blank lines and `#` comments are skipped. Throws std::invalid_argument
// naming the line for anything else than `host` or `host slots=N` (N >= 1).
std::vector<Host> parse_hosts(const std::string& text);

// `hosts` without those named in `excluded`, in their order.
std::vector<Host> without(const std::vector<Host>& hosts, const std::set<std::string>& excluded);

// The hosts that carry `ranks` ranks, filled in order (each host's slots, then the next), with
// each host's slots cut to the ranks it gets: rank r runs on the host whose share holds r.
std::vector<Host> place(const std::vector<Host>& hosts, int ranks);

// The Open MPI hostfile of a placement.
std::string hostfile(const std::vector<Host>& placement);

// The host of world rank `rank` under `placement`; "" when out of range.
std::string host_of_rank(const std::vector<Host>& placement, int rank);

// "a, b" (or "none").
std::string names(const std::vector<Host>& hosts);

}  // namespace agave::elastic
