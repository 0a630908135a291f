#include "elastic/hosts.h"

#include <sstream>
#include <stdexcept>

namespace agave::elastic {
namespace {

int parse_slots(const std::string& field, const std::string& line) {
  const std::string key = "slots=";
  size_t used = 0;
  int slots = 0;
  try {
    if (field.rfind(key, 0) != 0) throw std::invalid_argument(field);
    slots = std::stoi(field.substr(key.size()), &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || key.size() + used != field.size() || slots < 1) {
    throw std::invalid_argument("host line '" + line + "': expected 'host [slots=N]', N >= 1");
  }
  return slots;
}

}  // namespace

std::vector<Host> parse_hosts(const std::string& text) {
  std::vector<Host> hosts;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line.substr(0, line.find('#')));
    std::vector<std::string> f;
    for (std::string s; fields >> s;) f.push_back(s);
    if (f.empty()) continue;
    if (f.size() > 2) {
      throw std::invalid_argument("host line '" + line + "': expected 'host [slots=N]'");
    }
    hosts.push_back({f[0], f.size() == 2 ? parse_slots(f[1], line) : 1});
  }
  return hosts;
}

std::vector<Host> without(const std::vector<Host>& hosts, const std::set<std::string>& excluded) {
  std::vector<Host> out;
  for (const auto& h : hosts)
    if (!excluded.count(h.name)) out.push_back(h);
  return out;
}

std::vector<Host> place(const std::vector<Host>& hosts, int ranks) {
  std::vector<Host> out;
  for (const auto& h : hosts) {
    if (ranks <= 0) break;
    const int take = std::min(h.slots, ranks);
    out.push_back({h.name, take});
    ranks -= take;
  }
  return out;
}

std::string hostfile(const std::vector<Host>& placement) {
  std::string out;
  for (const auto& h : placement) out += h.name + " slots=" + std::to_string(h.slots) + "\n";
  return out;
}

std::string host_of_rank(const std::vector<Host>& placement, int rank) {
  for (const auto& h : placement) {
    if (rank < 0) break;
    if (rank < h.slots) return h.name;
    rank -= h.slots;
  }
  return "";
}

std::string names(const std::vector<Host>& hosts) {
  std::string out;
  for (const auto& h : hosts) out += (out.empty() ? "" : ", ") + h.name;
  return out.empty() ? "none" : out;
}

}  // namespace agave::elastic
