// The resolved configuration as YAML (--print-config, <run>/config.yaml) and the key list,
// both from the tables of launcher/config_table.h.
#include <array>
#include <charconv>
#include <string>
#include <type_traits>
#include <vector>

#include "launcher/config.h"
#include "launcher/config_table.h"

namespace agave::launcher {
namespace {

// The shortest text that reads back as `v` ("0.9", not yaml-cpp's "0.90000000000000002").
std::string shortest(double v) {
  std::array<char, 32> text{};
  const auto end = std::to_chars(text.data(), text.data() + text.size(), v).ptr;
  return std::string(text.data(), end);
}

bool same(const YAML::Node& a, const YAML::Node& b) {
  return a.IsDefined() && b.IsDefined() && YAML::Dump(a) == YAML::Dump(b);
}

// Writes every row of a table into one mapping. With `defaults` (a list element's), keys that
// are not required and equal their default are left out.
class KeyWriter {
 public:
  explicit KeyWriter(YAML::Node node, const YAML::Node* defaults = nullptr)
      : n_(node), defaults_(defaults) {}

  template <class Row, class T>
  void operator()(const Row& row, const T& field) {
    write(row, field);
    if (defaults_ && !row.required && same(n_[row.name], (*defaults_)[row.name])) {
      n_.remove(row.name);
    }
  }
  template <class T>
  void operator()(const NotAKey&, const T&) {}

  template <class S>
  static void write_section(YAML::Node node, const S& section,
                            const YAML::Node* defaults = nullptr) {
    KeyWriter keys(node, defaults);
    Table<S>::visit(section, keys);
  }

 private:
  template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
  void write(const Key& k, T v) {
    if constexpr (std::is_floating_point_v<T>) {
      n_[k.name] = shortest(v);
    } else {
      n_[k.name] = v;
    }
  }
  // An empty string is refused on reading (checkpoint.dir: empty means the default folder).
  void write(const Key& k, const std::string& v) {
    if (!v.empty()) n_[k.name] = v;
  }
  void write(const Key& k, const std::optional<double>& v) {
    if (v) n_[k.name] = shortest(*v);
  }
  template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
  void write(const Key& k, E v) {
    n_[k.name] = EnumNames<E>::name(v);
  }
  template <class S, std::enable_if_t<has_table<S>::value, int> = 0>
  void write(const Key& k, const S& section) {
    write_section(n_[k.name], section);
  }
  template <class L, std::enable_if_t<is_table_list<L>::value, int> = 0>
  void write(const Key& k, const L& list) {
    YAML::Node defaults(YAML::NodeType::Map);
    write_section(defaults, typename L::value_type{});
    for (const auto& element : list) {
      YAML::Node item(YAML::NodeType::Map);
      write_section(item, element, &defaults);
      item.SetStyle(YAML::EmitterStyle::Flow);
      n_[k.name].push_back(item);
    }
  }
  void write(const Key& k, const std::optional<model::LossSelection>& terms) {
    if (!terms) return;
    for (trainer::LossTerm t : EnumNames<trainer::LossTerm>::values) {
      if (trainer::selects(*terms, t)) n_[k.name].push_back(trainer::loss_term_name(t));
    }
  }
  void write(const Key& k, const std::vector<SweepAxis>& grid) {
    for (const auto& axis : grid) {
      YAML::Node values(YAML::NodeType::Sequence);
      for (const auto& v : axis.values) values.push_back(YAML::Clone(v));
      values.SetStyle(YAML::EmitterStyle::Flow);
      n_[k.name][axis.key] = values;
    }
  }

  YAML::Node n_;
  const YAML::Node* defaults_;
};

// Lists every key under `prefix`, with its default as written.
class KeyLister {
 public:
  KeyLister(std::string prefix, std::vector<KeyInfo>& out)
      : prefix_(std::move(prefix)), out_(out) {}

  template <class Row, class T>
  void operator()(const Row& row, const T& field) {
    KeyInfo info{prefix_ + row.name, row, std::nullopt, false, false, {}, ""};
    if constexpr (std::is_base_of_v<Num, Row>) {
      info.range = row.range;
      info.integer = std::is_integral_v<T>;
    }
    if constexpr (std::is_enum_v<T>) info.allowed = names_of<T>();
    YAML::Node written(YAML::NodeType::Map);
    KeyWriter writer(written);
    writer(row, field);
    if (written[row.name].IsScalar()) info.default_value = written[row.name].Scalar();
    info.section = has_table<T>::value;
    out_.push_back(info);
    if constexpr (has_table<T>::value) {
      KeyLister inner(info.path + ".", out_);
      Table<T>::visit(field, inner);
    } else if constexpr (is_table_list<T>::value) {
      KeyLister inner(info.path + "[].", out_);
      const typename T::value_type element{};
      Table<typename T::value_type>::visit(element, inner);
    }
  }
  template <class T>
  void operator()(const NotAKey&, const T&) {}

 private:
  std::string prefix_;
  std::vector<KeyInfo>& out_;
};

}  // namespace

YAML::Node to_yaml(const Config& c) {
  // Made a mapping now: KeyWriter writes through a copy of the handle.
  YAML::Node n(YAML::NodeType::Map);
  KeyWriter::write_section(n, c);
  return n;
}

std::string to_yaml_string(const Config& config) {
  YAML::Emitter out;
  out << to_yaml(config);
  return std::string(out.c_str()) + "\n";
}

std::vector<KeyInfo> config_keys() {
  std::vector<KeyInfo> out;
  const Config defaults;
  KeyLister all("", out);
  Table<Config>::visit(defaults, all);
  return out;
}

}  // namespace agave::launcher
