// The config tables (launcher/config_table.h) are the one list of keys: every field of every
// options struct has a row, --print-config writes every key, and docs/configuration.md lists
// exactly the table's keys with its defaults and ranges.
#include "launcher/config_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "data/options.h"
#include "launcher/config_error.h"
#include "tests/common/test_files.h"

namespace agave::launcher {
namespace {

// ---- fields of a struct --------------------------------------------------------------------

// Converts to any type: T{Any, Any, ...} compiles for at most as many values as an aggregate
// T has fields.
struct Any {
  template <class U>
  operator U() const;  // NOLINT: only ever named in decltype
};
template <class T, class Seq, class = void>
struct braces : std::false_type {};
template <class T, size_t... I>
struct braces<T, std::index_sequence<I...>, std::void_t<decltype(T{(void(I), Any{})...})>>
    : std::true_type {};
template <class T, size_t N = 0>
constexpr size_t field_count() {
  if constexpr (braces<T, std::make_index_sequence<N + 1>>::value) {
    return field_count<T, N + 1>();
  } else {
    return N;
  }
}

// Rows (keys and NotAKey) of a table.
template <class T>
size_t rows_of() {
  size_t n = 0;
  T o{};
  Table<T>::visit(o, [&](const auto&, auto&) { ++n; });
  return n;
}

template <class T>
void expect_a_row_per_field(const char* name) {
  static_assert(std::is_aggregate_v<T>);
  EXPECT_EQ(rows_of<T>(), field_count<T>()) << name << ": a field without a row (or the reverse)";
}

// Structs with private fields (model/'s TORCH_ARG options): the rows' fields must tile the
// struct, each at the next offset its alignment allows, so a missing field shows as a hole
// (one smaller than the alignment of the field after it can hide in padding).
template <class T>
void expect_rows_tile(const char* name) {
  T o{};
  std::vector<std::pair<size_t, std::pair<size_t, size_t>>> fields;  // offset, (size, align)
  Table<T>::visit(o, [&](const auto&, auto& field) {
    using F = std::decay_t<decltype(field)>;
    const size_t offset = reinterpret_cast<const char*>(&field) - reinterpret_cast<char*>(&o);
    fields.push_back({offset, {sizeof(F), alignof(F)}});
  });
  std::sort(fields.begin(), fields.end());
  size_t end = 0;
  for (const auto& [offset, size_align] : fields) {
    const auto [size, align] = size_align;
    EXPECT_EQ(offset, (end + align - 1) / align * align) << name << ": a field without a row";
    end = offset + size;
  }
  EXPECT_EQ(sizeof(T), (end + alignof(T) - 1) / alignof(T) * alignof(T))
      << name << ": a field without a row at the end";
}

TEST(ConfigTable, EveryFieldOfEveryOptionsStructHasARow) {
  expect_a_row_per_field<RunOptions>("RunOptions");
  expect_a_row_per_field<data::DataOptions>("DataOptions");
  expect_a_row_per_field<trainer::LossOptions>("LossOptions");
  expect_a_row_per_field<trainer::TrainOptions>("TrainOptions");
  expect_a_row_per_field<trainer::OptimizerOptions>("OptimizerOptions");
  expect_a_row_per_field<trainer::EvalOptions>("EvalOptions");
  expect_a_row_per_field<trainer::CheckpointOptions>("CheckpointOptions");
  expect_a_row_per_field<monitoring::MonitoringOptions>("MonitoringOptions");
  expect_a_row_per_field<cluster::ClusterOptions>("ClusterOptions");
  expect_a_row_per_field<SweepOptions>("SweepOptions");
  // The sections: Config's fields, and aux, a section of its own inside model.
  EXPECT_EQ(rows_of<Config>(), field_count<Config>() + 1);
  // PhaseOptions has constructors: its fields counted by name (a new field stops this line
  // from compiling).
  const auto& [kind, steps, lambda, free_bits, terms, conditioned] = trainer::PhaseOptions{};
  (void)kind, (void)steps, (void)lambda, (void)free_bits, (void)terms, (void)conditioned;
  EXPECT_EQ(rows_of<trainer::PhaseOptions>(), 6u);
  expect_rows_tile<model::AgaveOptions>("AgaveOptions");
  expect_rows_tile<model::VaeOptions>("VaeOptions");
  expect_rows_tile<model::PixelCnnOptions>("PixelCnnOptions");
  expect_rows_tile<model::AuxOptions>("AuxOptions");
}

// The test's own check finds a missing row: a struct whose table leaves a field out.
struct TwoFields {
  int64_t a = 0;
  bool b = false;
};
TEST(ConfigTable, FieldCountSeesEveryField) {
  static_assert(field_count<TwoFields>() == 2);
  static_assert(field_count<RunOptions>() == 3);
}

// ---- --print-config ------------------------------------------------------------------------

void leaves(const YAML::Node& n, const std::string& path, std::set<std::string>& out) {
  if (n.IsMap()) {
    for (const auto& kv : n)
      leaves(kv.second, (path.empty() ? "" : path + ".") + kv.first.Scalar(), out);
  } else {
    out.insert(path);
  }
}

TEST(ConfigTable, PrintConfigWritesEveryKeyOfTheTable) {
  Config c;
  c.checkpoint.dir = "ckpt";
  c.train.phases = {{trainer::PhaseKind::kJoint, 3}};
  std::set<std::string> written;
  leaves(to_yaml(c), "", written);
  std::set<std::string> keys;
  for (const auto& k : config_keys()) {
    if (!k.section && k.path.find("[]") == std::string::npos && k.path != "sweep.grid") {
      keys.insert(k.path);
    }
  }
  EXPECT_EQ(written, keys);
}

// ---- docs/configuration.md -----------------------------------------------------------------

// "[1, 10^9]", "[0, 2^63 − 1]", "(0, 1]": a range as the docs write it.
std::string doc_text(const NumericRange& r) {
  auto bound = [](double v) {
    if (v == kInt64Max) return std::string("2^63 − 1");
    const double exponent = std::log10(v);
    if (v >= 1e6 && exponent == std::floor(exponent)) {
      return "10^" + std::to_string(static_cast<int>(exponent));
    }
    std::ostringstream s;
    s << std::setprecision(15) << v;
    return s.str();
  };
  return std::string(r.lo_open ? "(" : "[") + bound(r.lo) + ", " + bound(r.hi) +
         (r.hi_open ? ")" : "]");
}

// The cells of a table line, split at '|' (not at "\|").
std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '|' && line[i - 1] != '\\') {
      const auto b = cell.find_first_not_of(' '), e = cell.find_last_not_of(' ');
      out.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
      cell.clear();
    } else {
      cell += line[i];
    }
  }
  return out;
}

// "`optimizer.beta1`, `beta2`" → optimizer.beta1, optimizer.beta2 (a short name takes the
// first one's prefix).
std::vector<std::string> key_names(const std::string& cell) {
  std::vector<std::string> out;
  for (size_t b = cell.find('`'); b != std::string::npos; b = cell.find('`', b + 1)) {
    const size_t e = cell.find('`', b + 1);
    std::string name = cell.substr(b + 1, e - b - 1);
    if (!out.empty() && name.find('.') == std::string::npos) {
      name = out.front().substr(0, out.front().rfind('.') + 1) + name;
    }
    out.push_back(name);
    b = e;
  }
  return out;
}

std::vector<std::string> split(const std::string& text, const std::string& sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t at; (at = text.find(sep, start)) != std::string::npos; start = at + sep.size()) {
    out.push_back(text.substr(start, at - start));
  }
  out.push_back(text.substr(start));
  return out;
}

struct DocsKeys {
  std::map<std::string, std::string> defaults;  // section tables: key → default cell
  std::map<std::string, std::string> ranges;    // the ranges table: key → range
};

DocsKeys read_docs(const std::set<std::string>& sections) {
  std::ifstream in(std::string(AGAVE_SOURCE_DIR) + "/docs/configuration.md");
  EXPECT_TRUE(in.good());
  DocsKeys docs;
  std::string section, line;
  bool ranges = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) {
      section = sections.count(line.substr(3)) ? line.substr(3) : "";
      ranges = line.find("ranges") != std::string::npos;
      continue;
    }
    if (line.rfind("| `", 0) != 0) continue;
    const auto c = cells(line);
    if (ranges) {
      for (size_t i = 0; i + 1 < c.size(); i += 3) {
        for (const auto& key : key_names(c[i])) docs.ranges[key] = c[i + 1];
      }
    } else if (!section.empty() && c.size() >= 2) {
      const auto keys = key_names(c[0]);
      const auto values = split(c[1], ", ");
      for (size_t i = 0; i < keys.size(); ++i) {
        docs.defaults[section + "." + keys[i]] = values.size() == keys.size() ? values[i] : c[1];
      }
    }
  }
  return docs;
}

std::string unquoted(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '`'), s.end());
  return s;
}

TEST(ConfigTable, DocsListEveryKeyWithItsDefaultAndRange) {
  const auto keys = config_keys();
  std::set<std::string> sections;
  for (const auto& k : keys) {
    if (k.section) sections.insert(k.path);
  }
  const DocsKeys docs = read_docs(sections);
  std::map<std::string, const KeyInfo*> leaves, ranged;
  for (const auto& k : keys) {
    EXPECT_NE(std::string(k.row.doc), "") << k.path;
    if (k.range) ranged[k.path] = &k;
    if (!k.section && k.path.find("[]") == std::string::npos) leaves[k.path] = &k;
  }
  for (const auto& [path, cell] : docs.defaults) {
    EXPECT_TRUE(leaves.count(path)) << path << ": in docs/configuration.md, not in the table";
  }
  for (const auto& [path, info] : leaves) {
    const auto it = docs.defaults.find(path);
    if (it == docs.defaults.end()) {
      ADD_FAILURE() << path << ": in the table, not in docs/configuration.md";
      continue;
    }
    if (info->row.derived || info->default_value.empty()) continue;
    const std::string doc = unquoted(it->second);
    if (info->range) {
      EXPECT_DOUBLE_EQ(std::stod(doc), std::stod(info->default_value)) << path;
    } else {
      EXPECT_EQ(doc, info->default_value) << path;
    }
  }
  for (const auto& [path, range] : docs.ranges) {
    EXPECT_TRUE(ranged.count(path)) << path << ": has a range in the docs, not in the table";
  }
  for (const auto& [path, info] : ranged) {
    const auto it = docs.ranges.find(path);
    if (it == docs.ranges.end()) {
      ADD_FAILURE() << path << ": numeric key without a range in docs/configuration.md";
      continue;
    }
    EXPECT_EQ(it->second, doc_text(*info->range)) << path;
  }
}

// ---- closed sets ---------------------------------------------------------------------------

TEST(ConfigTable, DatasetNamesAreTheOnesYamlAndAgaveDataAccept) {
  for (const data::Dataset d : data::kDatasets) {
    EXPECT_EQ(data::parse_dataset(data::dataset_name(d)), d);
  }
  for (const std::string other : {"cifar-10", "CIFAR-10", "fmnist", "fashion-mnist", "mnist"}) {
    EXPECT_FALSE(data::parse_dataset(other)) << other;
  }
  EXPECT_EQ(data::dataset_names(), "fashion_mnist, cifar10");
  for (const auto& k : config_keys()) {
    if (k.path == "data.dataset") {
      EXPECT_EQ(join(k.allowed, ", "), data::dataset_names());
    }
  }
}

}  // namespace
}  // namespace agave::launcher
