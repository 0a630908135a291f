#include "analysis/per_image_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

namespace agave::analysis {

namespace {

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string piece;
  std::istringstream in(line);
  while (std::getline(in, piece, sep)) out.push_back(piece);
  if (!line.empty() && line.back() == sep) out.emplace_back();
  return out;
}

// Reads one file line by line, each problem naming the file and line.
class Parser {
 public:
  Parser(const std::string& path, PerImageFile& f) : path_(path), f_(f) {}

  void line(const std::string& text) {
    ++number_;
    if (text.empty()) return;
    if (text[0] == '#') return comment(text);
    if (!header_seen_) return header(text);
    row(text);
  }
  void finish() const {
    if (!format_seen_)
      fail(0, std::string("not a per-image file (no '# ") + kPerImageFormat + "')");
    if (!header_seen_) fail(0, "no header row (index,...)");
  }

 private:
  [[noreturn]] void fail(int64_t line, const std::string& problem) const {
    throw io::BadDataError(path_,
                           (line > 0 ? "line " + std::to_string(line) + ": " : "") + problem);
  }

  int64_t integer(const std::string& text) const {
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0)
      fail(number_, "'" + text + "' is not an integer");
    return v;
  }
  double number(const std::string& text) const {
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || errno == ERANGE) {
      fail(number_, "'" + text + "' is not a number");
    }
    return v;
  }

  void comment(const std::string& text) {
    const std::string body = text.substr(text.find_first_not_of("# "));
    if (body == kPerImageFormat) {
      format_seen_ = true;
      return;
    }
    const auto eq = body.find('=');
    if (eq == std::string::npos) return;  // a remark
    const std::string key = body.substr(0, eq), value = body.substr(eq + 1);
    auto& m = f_.meta;
    if (key == "checkpoint") m.checkpoint = value;
    if (key == "step") m.step = integer(value);
    if (key == "seed") m.seed = static_cast<uint64_t>(integer(value));
    if (key == "weights") m.weights = value;
    if (key == "importance_samples") m.importance_samples = integer(value);
    if (key == "test_split") m.test_split = integer(value);
  }

  void header(const std::string& text) {
    if (!format_seen_)
      fail(number_, std::string("the first line must be '# ") + kPerImageFormat + "'");
    auto names = split(text, ',');
    if (names.empty() || names[0] != "index") fail(number_, "the header must start with 'index'");
    names.erase(names.begin());
    f_.columns = names;
    f_.values.assign(names.size(), {});
    header_seen_ = true;
  }

  void row(const std::string& text) {
    const auto cells = split(text, ',');
    if (cells.size() != f_.columns.size() + 1) {
      fail(number_, std::to_string(cells.size()) + " fields, the header names " +
                        std::to_string(f_.columns.size() + 1));
    }
    f_.index.push_back(integer(cells[0]));
    for (size_t c = 0; c < f_.columns.size(); ++c) f_.values[c].push_back(number(cells[c + 1]));
  }

  const std::string& path_;
  PerImageFile& f_;
  int64_t number_ = 0;
  bool format_seen_ = false, header_seen_ = false;
};

}  // namespace

const std::vector<double>& PerImageFile::column(const std::string& name) const {
  for (size_t c = 0; c < columns.size(); ++c) {
    if (columns[c] == name) return values[c];
  }
  throw io::BadDataError(path, "no column '" + name + "'");
}

std::string to_text(const PerImageFile& f) {
  const auto& m = f.meta;
  std::string out = fmt::format(
      "# {}\n# checkpoint={}\n# step={}\n# seed={}\n# weights={}\n# importance_samples={}\n"
      "# test_split={}\nindex",
      kPerImageFormat, m.checkpoint, m.step, m.seed, m.weights, m.importance_samples, m.test_split);
  for (const auto& c : f.columns) out += "," + c;
  out += "\n";
  for (size_t r = 0; r < f.rows(); ++r) {
    out += std::to_string(f.index[r]);
    for (const auto& column : f.values) out += fmt::format(",{:.9g}", column[r]);
    out += "\n";
  }
  return out;
}

PerImageFile parse_per_image(const std::string& path, const std::string& text) {
  PerImageFile f;
  f.path = path;
  Parser parser(path, f);
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) parser.line(line);
  parser.finish();
  return f;
}

PerImageFile read_per_image(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw io::BadDataError(path, "cannot be read (no such file?)");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_per_image(path, text.str());
}

}  // namespace agave::analysis
