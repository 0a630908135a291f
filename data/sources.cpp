#include "data/sources.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

#include "data/errors.h"
#include "io/bounds.h"

namespace agave::data {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kCifarTrain = {"data_batch_1.bin", "data_batch_2.bin",
                                              "data_batch_3.bin", "data_batch_4.bin",
                                              "data_batch_5.bin"};
const std::vector<std::string> kCifarTest = {"test_batch.bin"};

// zlib's gz* functions read plain files transparently, so one reader serves .gz and raw IDX.
class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path) {
    f_ = gzopen(path.c_str(), "rb");
    if (f_ == nullptr)
      throw io::DataError(path, std::string("cannot open: ") + std::strerror(errno));
    gzbuffer(f_, 1 << 18);
  }
  ~GzFile() {
    if (f_ != nullptr) gzclose(f_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads up to n bytes; fewer only at the end of the data.
  size_t read(void* out, size_t n) {
    size_t done = 0;
    while (done < n) {
      const unsigned want = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(f_, static_cast<char*>(out) + done, want);
      if (got < 0) {
        int err = 0;
        const char* msg = gzerror(f_, &err);
        throw io::BadDataError(path_, std::string("corrupt or truncated gzip data (") + msg + ")");
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }
  void read_exact(void* out, size_t n, const std::string& what) {
    const size_t got = read(out, n);
    if (got != n) {
      throw io::BadDataError(path_, "truncated: " + what + " needs " + std::to_string(n) +
                                        " bytes, only " + std::to_string(got) + " left");
    }
  }
  bool at_end() {
    char c;
    return read(&c, 1) == 0;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  gzFile f_ = nullptr;
};

std::string join_names(const std::vector<std::string>& paths) {
  std::string s;
  for (const auto& p : paths) s += (s.empty() ? "" : ", ") + fs::path(p).filename().string();
  return s;
}

// ---- CIFAR-10 ------------------------------------------------------------------------------

// One member of a CIFAR split: a file on disk, or bytes taken out of the tar.gz.
struct CifarMember {
  std::string name;  // path, or "archive.tar.gz:member" for archive members
  std::string file;  // non-empty when read from disk
  std::vector<uint8_t> bytes;
  int64_t records = 0;
};

class CifarSource : public SplitSource {
 public:
  CifarSource(std::string split, std::vector<CifarMember> members, std::string description)
      : split_(std::move(split)),
        members_(std::move(members)),
        description_(std::move(description)) {
    for (const auto& m : members_) count_ += m.records;
  }
  ~CifarSource() override {
    if (f_ != nullptr) std::fclose(f_);
  }
  std::string split() const override { return split_; }
  int64_t count() const override { return count_; }
  ImageShape shape() const override { return ImageShape{3, 32, 32}; }
  std::string description() const override { return description_; }

  int64_t read(uint8_t* images, uint8_t* labels, int64_t n) override {
    int64_t done = 0;
    std::vector<uint8_t> rec(kCifarRecordBytes);
    while (done < n && member_ < members_.size()) {
      CifarMember& m = members_[member_];
      if (record_ == m.records) {
        next_member();
        continue;
      }
      const int64_t take = std::min(n - done, m.records - record_);
      for (int64_t i = 0; i < take; ++i) {
        const uint8_t* src;
        if (m.file.empty()) {
          src = m.bytes.data() + (record_ + i) * kCifarRecordBytes;
        } else {
          open_member(m);
          if (std::fread(rec.data(), 1, rec.size(), f_) != rec.size()) {
            throw io::DataError(m.name, "truncated at record " + std::to_string(record_ + i) +
                                            " (file changed while reading?)");
          }
          src = rec.data();
        }
        if (src[0] > 9) {
          throw io::BadDataError(m.name,
                                 "record " + std::to_string(record_ + i) + " has label " +
                                     std::to_string(src[0]) +
                                     "; CIFAR-10 labels are 0-9 (not a CIFAR-10 binary batch?)");
        }
        labels[done + i] = src[0];
        // The record's pixels are already planar (R plane, G plane, B plane), as we store them.
        std::memcpy(images + (done + i) * (kCifarRecordBytes - 1), src + 1, kCifarRecordBytes - 1);
      }
      record_ += take;
      done += take;
    }
    return done;
  }

 private:
  void open_member(const CifarMember& m) {
    if (f_ != nullptr) return;
    f_ = std::fopen(m.file.c_str(), "rb");
    if (f_ == nullptr)
      throw io::DataError(m.file, std::string("cannot open: ") + std::strerror(errno));
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  }
  void next_member() {
    if (f_ != nullptr) std::fclose(f_);
    f_ = nullptr;
    members_[member_].bytes = {};
    ++member_;
    record_ = 0;
  }

  std::string split_;
  std::vector<CifarMember> members_;
  std::string description_;
  int64_t count_ = 0;
  size_t member_ = 0;
  int64_t record_ = 0;
  std::FILE* f_ = nullptr;
};

int64_t cifar_records(const std::string& name, uint64_t size) {
  if (size == 0 || size % kCifarRecordBytes != 0) {
    throw io::BadDataError(name, "size " + std::to_string(size) +
                                     " bytes is not a whole number of 3073-byte CIFAR-10 records "
                                     "(truncated, or not the binary version?)");
  }
  if (size > kCifarBatchBytes) {
    throw io::BadDataError(name, "size " + std::to_string(size) +
                                     " bytes: a CIFAR-10 batch holds " +
                                     std::to_string(kCifarBatchBytes) + " bytes (10000 records)");
  }
  return static_cast<int64_t>(size / kCifarRecordBytes);
}

std::optional<std::string> find_cifar_dir(const std::string& path) {
  std::error_code ec;
  for (const fs::path& d : {fs::path(path), fs::path(path) / "cifar-10-batches-bin"}) {
    if (fs::exists(d / "data_batch_1.bin", ec) || fs::exists(d / "test_batch.bin", ec)) {
      return d.string();
    }
  }
  return std::nullopt;
}

std::optional<std::string> find_cifar_tar(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  const fs::path p = fs::path(path) / kCifarTarName;
  if (fs::exists(p, ec)) return p.string();
  return std::nullopt;
}

std::vector<std::unique_ptr<SplitSource>> open_cifar(const std::string& path) {
  std::vector<std::unique_ptr<SplitSource>> out;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw io::DataError(path, "CIFAR-10 source not found");
  if (auto dir = find_cifar_dir(path)) {
    for (const auto& [split, names] : {std::pair{"train", kCifarTrain}, {"test", kCifarTest}}) {
      std::vector<CifarMember> members;
      std::vector<std::string> files;
      for (const auto& n : names) {
        const std::string f = (fs::path(*dir) / n).string();
        if (!fs::is_regular_file(f, ec)) {
          throw io::DataError(f,
                              "missing: a CIFAR-10 binary source needs data_batch_1..5.bin and "
                              "test_batch.bin");
        }
        CifarMember m;
        m.name = f;
        m.file = f;
        m.records = cifar_records(f, fs::file_size(f, ec));
        members.push_back(std::move(m));
        files.push_back(f);
      }
      out.push_back(std::make_unique<CifarSource>(split, std::move(members), join_names(files)));
    }
    return out;
  }
  if (auto tar = find_cifar_tar(path)) {
    std::vector<std::string> wanted = kCifarTrain;
    wanted.insert(wanted.end(), kCifarTest.begin(), kCifarTest.end());
    auto members = read_tar_members(*tar, wanted, kCifarBatchBytes);
    for (const auto& [split, names] : {std::pair{"train", kCifarTrain}, {"test", kCifarTest}}) {
      std::vector<CifarMember> ms;
      for (const auto& n : names) {
        auto it = std::find_if(members.begin(), members.end(),
                               [&](const auto& m) { return m.first == n; });
        if (it == members.end()) {
          throw io::BadDataError(*tar,
                                 "archive has no member " + n + " (not cifar-10-binary.tar.gz?)");
        }
        CifarMember m;
        m.name = *tar + ":" + n;
        m.records = cifar_records(m.name, it->second.size());
        m.bytes = std::move(it->second);
        ms.push_back(std::move(m));
      }
      out.push_back(std::make_unique<CifarSource>(
          split, std::move(ms), fs::path(*tar).filename().string() + ":" + join_names(names)));
    }
    return out;
  }
  throw io::DataError(path, "no CIFAR-10 binary batches (data_batch_1.bin ...) or " +
                                std::string(kCifarTarName) + " here");
}

// ---- IDX (Fashion-MNIST) -------------------------------------------------------------------

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

class IdxSource : public SplitSource {
 public:
  IdxSource(std::string split, const std::string& images, const std::string& labels)
      : split_(std::move(split)), images_(images), labels_(labels) {
    uint8_t h[16];
    images_.read_exact(h, 16, "the IDX image header");
    if (be32(h) != 0x00000803) {
      throw io::BadDataError(images, "not an IDX image file: magic " + hex32(be32(h)) +
                                         ", expected 0x00000803 (unsigned bytes, 3 dimensions)");
    }
    count_ = be32(h + 4);
    rows_ = be32(h + 8);
    cols_ = be32(h + 12);
    if (count_ == 0 || rows_ == 0 || cols_ == 0 || rows_ > 4096 || cols_ > 4096) {
      throw io::BadDataError(images, "implausible IDX dimensions " + std::to_string(count_) + "x" +
                                         std::to_string(rows_) + "x" + std::to_string(cols_) +
                                         " (each 1 to 4096 rows and columns, at least 1 image)");
    }
    // The header is checked against the file before its count sizes anything: exactly for a
    // plain file (below), and against what a gzip file of this size can possibly inflate to.
    check_gzip_capacity(images, 16 + static_cast<uint64_t>(count_) * rows_ * cols_);
    check_plain_size(images, 16 + static_cast<uint64_t>(count_) * rows_ * cols_);
    labels_.read_exact(h, 8, "the IDX label header");
    if (be32(h) != 0x00000801) {
      throw io::BadDataError(labels, "not an IDX label file: magic " + hex32(be32(h)) +
                                         ", expected 0x00000801 (unsigned bytes, 1 dimension)");
    }
    if (be32(h + 4) != count_) {
      throw io::BadDataError(labels, "holds " + std::to_string(be32(h + 4)) + " labels but " +
                                         fs::path(images).filename().string() + " holds " +
                                         std::to_string(count_) + " images");
    }
    check_gzip_capacity(labels, 8 + static_cast<uint64_t>(count_));
    check_plain_size(labels, 8 + static_cast<uint64_t>(count_));
  }
  std::string split() const override { return split_; }
  int64_t count() const override { return count_; }
  ImageShape shape() const override { return ImageShape{1, rows_, cols_}; }
  std::string description() const override { return join_names({images_.path(), labels_.path()}); }

  int64_t read(uint8_t* images, uint8_t* labels, int64_t n) override {
    const int64_t take = std::min(n, count_ - done_);
    if (take <= 0) return 0;
    const std::string what = "images " + std::to_string(done_) + ".." +
                             std::to_string(done_ + take - 1) + " of the " +
                             std::to_string(count_) + " the header announces";
    images_.read_exact(images, static_cast<size_t>(take * rows_ * cols_), what);
    labels_.read_exact(labels, static_cast<size_t>(take), "labels of " + what);
    done_ += take;
    if (done_ == count_) {
      if (!images_.at_end())
        throw io::BadDataError(images_.path(), "trailing bytes after the last image");
      if (!labels_.at_end())
        throw io::BadDataError(labels_.path(), "trailing bytes after the last label");
    }
    return take;
  }

 private:
  // A gzip file inflates to at most io::kMaxDeflateRatio times its size: a header announcing more
  // data than that is refused before anything is read or allocated.
  static void check_gzip_capacity(const std::string& path, uint64_t announced) {
    if (!is_gzip(path)) return;  // check_plain_size checks the exact size
    std::error_code ec;
    const uint64_t size = fs::file_size(path, ec);
    if (ec) return;  // the reads below report it
    const auto cap = io::checked_mul(size, io::kMaxDeflateRatio);
    if (cap && announced > *cap + 64) {
      throw io::BadDataError(path, "header announces " + std::to_string(announced) +
                                       " bytes, more than a file of " + std::to_string(size) +
                                       " bytes can hold even compressed (truncated or corrupt?)");
    }
  }

  // Uncompressed files can be checked before any work; gzipped ones are checked while read.
  static bool is_gzip(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    unsigned char magic[2] = {0, 0};
    const bool gz =
        f != nullptr && std::fread(magic, 1, 2, f) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (f != nullptr) std::fclose(f);
    return gz;
  }

  static void check_plain_size(const std::string& path, uint64_t expected) {
    if (is_gzip(path)) return;
    std::error_code ec;
    const uint64_t size = fs::file_size(path, ec);
    if (!ec && size != expected) {
      throw io::BadDataError(path, "size " + std::to_string(size) +
                                       " bytes, but its header implies " +
                                       std::to_string(expected) + " (truncated or wrong file?)");
    }
  }

  std::string split_;
  GzFile images_, labels_;
  int64_t count_ = 0, rows_ = 0, cols_ = 0, done_ = 0;
};

std::string find_idx(const std::string& dir, const std::string& stem) {
  std::error_code ec;
  for (const std::string suffix : {"", ".gz"}) {
    const fs::path p = fs::path(dir) / (stem + suffix);
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  throw io::DataError((fs::path(dir) / stem).string(),
                      "missing (looked for it with and without .gz)");
}

std::vector<std::unique_ptr<SplitSource>> open_idx(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw io::DataError(dir, "not a folder of IDX files (train-images-idx3-ubyte[.gz], ...)");
  }
  std::vector<std::unique_ptr<SplitSource>> out;
  for (const auto& [split, prefix] : {std::pair{"train", "train"}, {"test", "t10k"}}) {
    out.push_back(std::make_unique<IdxSource>(
        split, find_idx(dir, std::string(prefix) + "-images-idx3-ubyte"),
        find_idx(dir, std::string(prefix) + "-labels-idx1-ubyte")));
  }
  return out;
}

}  // namespace

namespace {

// A numeric tar header field: octal digits, optionally led by spaces and ended by a space or NUL
// (POSIX ustar). GNU's base-256 form (high bit set) only appears for members of 8 GiB and more,
// which no source here has: refused like any other malformed field.
std::optional<uint64_t> tar_octal(const uint8_t* field, size_t n) {
  size_t i = 0;
  while (i < n && field[i] == ' ') ++i;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < n && field[i] >= '0' && field[i] <= '7'; ++i, ++digits) {
    if (v > (std::numeric_limits<uint64_t>::max() >> 3)) return std::nullopt;
    v = v * 8 + static_cast<uint64_t>(field[i] - '0');
  }
  for (; i < n; ++i) {
    if (field[i] != ' ' && field[i] != 0) return std::nullopt;
  }
  if (digits == 0) return std::nullopt;
  return v;
}

// Reads `size` bytes of a member into `out`, growing it with what is actually read (in 1 MiB
// steps): a header that lies about its size costs no more memory than the archive delivers.
void read_member(GzFile& in, uint64_t size, std::vector<uint8_t>& out, const std::string& what) {
  out.clear();
  constexpr uint64_t kStep = uint64_t{1} << 20;
  while (out.size() < size) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kStep, size - out.size()));
    const size_t at = out.size();
    out.resize(at + n);
    const size_t got = in.read(out.data() + at, n);
    if (got != n) {
      throw io::BadDataError(in.path(), "truncated: " + what + " needs " + std::to_string(size) +
                                            " bytes, only " + std::to_string(at + got) + " left");
    }
  }
}

}  // namespace

std::vector<std::pair<std::string, std::vector<uint8_t>>> read_tar_members(
    const std::string& path, const std::vector<std::string>& names, uint64_t max_member_bytes) {
  GzFile in(path);
  std::vector<std::pair<std::string, std::vector<uint8_t>>> out;
  std::vector<char> skip(1 << 16);
  uint8_t h[512];
  std::string long_name;
  // GNU long names are file names: 4 KiB is PATH_MAX on Linux.
  constexpr uint64_t kMaxLongName = 4096;
  for (int64_t member = 0;; ++member) {
    const size_t got = in.read(h, 512);
    if (got == 0) break;  // archives without the two zero blocks still end cleanly
    if (got != 512) throw io::BadDataError(path, "truncated tar archive (partial header)");
    if (std::all_of(h, h + 512, [](uint8_t b) { return b == 0; })) break;
    unsigned sum = 0;
    for (int i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    const auto stored = tar_octal(h + 148, 8);
    if (!stored || sum != *stored) {
      throw io::BadDataError(path, "not a tar archive (header checksum mismatch at member " +
                                       std::to_string(member) + ")");
    }
    const auto size_field = tar_octal(h + 124, 12);
    std::string name(reinterpret_cast<char*>(h), strnlen(reinterpret_cast<char*>(h), 100));
    if (std::memcmp(h + 257, "ustar", 5) == 0 && h[345] != 0) {
      name = std::string(reinterpret_cast<char*>(h + 345),
                         strnlen(reinterpret_cast<char*>(h + 345), 155)) +
             "/" + name;
    }
    if (!long_name.empty()) name = std::exchange(long_name, "");
    if (!size_field) {
      throw io::BadDataError(path, "member " + name + ": size field is not an octal number");
    }
    const uint64_t size = *size_field;
    const char type = static_cast<char>(h[156]);
    // size < 2^36 (11 octal digits), so rounding up cannot overflow.
    const uint64_t padded = (size + 511) / 512 * 512;
    const std::string base = fs::path(name).filename().string();
    const bool regular = type == '0' || type == '\0';
    const bool wanted = regular && std::find(names.begin(), names.end(), base) != names.end();
    if (type == 'L' || wanted) {
      const uint64_t limit = type == 'L' ? kMaxLongName : max_member_bytes;
      if (size > limit) {
        throw io::BadDataError(path, "member " + name + ": size field " + std::to_string(size) +
                                         " bytes exceeds the " + std::to_string(limit) +
                                         " this format allows");
      }
      std::vector<uint8_t> data;
      read_member(in, size, data, "member " + name);
      in.read_exact(skip.data(), padded - size, "padding of member " + name);
      if (type == 'L') {
        long_name.assign(reinterpret_cast<char*>(data.data()),
                         strnlen(reinterpret_cast<char*>(data.data()), data.size()));
      } else {
        out.emplace_back(base, std::move(data));
      }
      continue;
    }
    for (uint64_t left = padded; left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, skip.size()));
      in.read_exact(skip.data(), n, "member " + name);
      left -= n;
    }
  }
  return out;
}

std::vector<std::unique_ptr<SplitSource>> open_source(Dataset dataset, const std::string& path) {
  return dataset == Dataset::kCifar10 ? open_cifar(path) : open_idx(path);
}

std::optional<Dataset> detect_dataset(const std::string& path) {
  std::error_code ec;
  if (find_cifar_dir(path) || fs::path(path).filename() == kCifarTarName ||
      fs::exists(fs::path(path) / kCifarTarName, ec)) {
    return Dataset::kCifar10;
  }
  for (const char* stem : {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"}) {
    if (fs::exists(fs::path(path) / stem, ec)) return Dataset::kFashionMnist;
  }
  return std::nullopt;
}

}  // namespace agave::data
