#include "data/shard.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "data/errors.h"
#include "hdf5/checked.h"
#include "io/bounds.h"
#include "io/checksum.h"

namespace agave::data {

namespace fs = std::filesystem;

int64_t default_chunk_images(const ImageShape& shape) {
  const int64_t bytes = std::max<int64_t>(1, shape.channels * shape.height * shape.width);
  int64_t n = 1;
  while (n * 2 * bytes <= (256 << 10)) n *= 2;
  return n;
}

// ---- writer ---------------------------------------------------------------------------------

struct ShardWriter::Impl {
  std::string path;
  std::string tmp;
  ShardWriteOptions opt;
  int64_t image_bytes = 0;
  hdf5::Handle file, images, labels;
  std::vector<uint8_t> chunk;  // images waiting to fill one HDF5 chunk
  int64_t chunk_fill = 0;
  int64_t flushed = 0;  // images already handed to HDF5
  std::vector<uint8_t> label_bytes;
  io::Digest digest;
  bool finished = false;

  void write_images(const uint8_t* data, int64_t first, int64_t n) {
    hsize_t start[4] = {static_cast<hsize_t>(first), 0, 0, 0};
    hsize_t count[4] = {static_cast<hsize_t>(n), static_cast<hsize_t>(opt.shape.channels),
                        static_cast<hsize_t>(opt.shape.height),
                        static_cast<hsize_t>(opt.shape.width)};
    hdf5::Handle fspace(hdf5::check_id(H5Dget_space(images.get()), tmp, "H5Dget_space"), H5Sclose);
    hdf5::check_status(
        H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr), tmp,
        "cannot select images to write");
    hdf5::Handle mspace(hdf5::check_id(H5Screate_simple(4, count, nullptr), tmp, "H5Screate"),
                        H5Sclose);
    hdf5::check_status(
        H5Dwrite(images.get(), H5T_NATIVE_UINT8, mspace.get(), fspace.get(), H5P_DEFAULT, data),
        tmp, "cannot write images (disk full?)");
  }

  void flush_chunk() {
    if (chunk_fill == 0) return;
    write_images(chunk.data(), flushed, chunk_fill);
    flushed += chunk_fill;
    chunk_fill = 0;
  }
};

ShardWriter::ShardWriter(std::string path, ShardWriteOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = std::move(path);
  m.tmp = m.path + ".tmp";
  m.opt = std::move(options);
  const ImageShape& s = m.opt.shape;
  if (s.channels <= 0 || s.height <= 0 || s.width <= 0) {
    throw io::DataError(m.path, "cannot write a shard with an empty image shape");
  }
  if (m.opt.count <= 0) throw io::DataError(m.path, "cannot write a shard of zero images");
  if (m.opt.compression < 0 || m.opt.compression > 9) {
    throw io::DataError(m.path,
                        "gzip level must be 0..9, got " + std::to_string(m.opt.compression));
  }
  if (m.opt.chunk_images <= 0) m.opt.chunk_images = default_chunk_images(s);
  m.opt.chunk_images = std::min(m.opt.chunk_images, m.opt.count);
  m.image_bytes = s.channels * s.height * s.width;
  m.chunk.resize(static_cast<size_t>(m.opt.chunk_images * m.image_bytes));
  m.label_bytes.reserve(static_cast<size_t>(m.opt.count));

  hdf5::QuietErrors quiet;
  m.file =
      hdf5::Handle(hdf5::check_id(H5Fcreate(m.tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                                  m.tmp, "cannot create HDF5 file"),
                   H5Fclose);

  hsize_t dims[4] = {static_cast<hsize_t>(m.opt.count), static_cast<hsize_t>(s.channels),
                     static_cast<hsize_t>(s.height), static_cast<hsize_t>(s.width)};
  hsize_t chunk[4] = {static_cast<hsize_t>(m.opt.chunk_images), dims[1], dims[2], dims[3]};
  hdf5::Handle space(hdf5::check_id(H5Screate_simple(4, dims, nullptr), m.tmp, "H5Screate"),
                     H5Sclose);
  hdf5::Handle dcpl(hdf5::check_id(H5Pcreate(H5P_DATASET_CREATE), m.tmp, "H5Pcreate"), H5Pclose);
  hdf5::check_status(H5Pset_chunk(dcpl.get(), 4, chunk), m.tmp, "H5Pset_chunk");
  // Every chunk is written in full, so filling it first would only cost time.
  hdf5::check_status(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), m.tmp, "H5Pset_fill_time");
  if (m.opt.compression > 0) {
    hdf5::check_status(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(m.opt.compression)), m.tmp,
                       "H5Pset_deflate");
  }
  m.images =
      hdf5::Handle(hdf5::check_id(H5Dcreate2(m.file.get(), "images", H5T_STD_U8LE, space.get(),
                                             H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                                  m.tmp, "cannot create dataset 'images'"),
                   H5Dclose);

  hsize_t ldims[1] = {static_cast<hsize_t>(m.opt.count)};
  hdf5::Handle lspace(hdf5::check_id(H5Screate_simple(1, ldims, nullptr), m.tmp, "H5Screate"),
                      H5Sclose);
  m.labels =
      hdf5::Handle(hdf5::check_id(H5Dcreate2(m.file.get(), "labels", H5T_STD_U8LE, lspace.get(),
                                             H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                  m.tmp, "cannot create dataset 'labels'"),
                   H5Dclose);
}

ShardWriter::~ShardWriter() {
  // An unfinished shard is removed; a finished one kept at .tmp belongs to the caller.
  if (impl_ && !impl_->finished) {
    impl_->images.reset();
    impl_->labels.reset();
    impl_->file.reset();
    std::error_code ec;
    fs::remove(impl_->tmp, ec);
  }
}

int64_t ShardWriter::written() const { return static_cast<int64_t>(impl_->label_bytes.size()); }

void ShardWriter::append(const uint8_t* images, const uint8_t* labels, int64_t n) {
  Impl& m = *impl_;
  if (m.finished) throw std::logic_error("ShardWriter::append after finish");
  if (written() + n > m.opt.count) {
    throw io::DataError(m.path, "more images appended than the " + std::to_string(m.opt.count) +
                                    " the shard was created for");
  }
  hdf5::QuietErrors quiet;
  m.digest.update(images, static_cast<size_t>(n * m.image_bytes));
  m.label_bytes.insert(m.label_bytes.end(), labels, labels + n);
  // Whole chunks go straight to HDF5 from the caller's buffer; only the ragged edges are copied.
  int64_t done = 0;
  while (done < n) {
    if (m.chunk_fill == 0 && n - done >= m.opt.chunk_images) {
      const int64_t whole = (n - done) / m.opt.chunk_images * m.opt.chunk_images;
      m.write_images(images + done * m.image_bytes, m.flushed, whole);
      m.flushed += whole;
      done += whole;
      continue;
    }
    const int64_t take = std::min(n - done, m.opt.chunk_images - m.chunk_fill);
    std::memcpy(m.chunk.data() + m.chunk_fill * m.image_bytes, images + done * m.image_bytes,
                static_cast<size_t>(take * m.image_bytes));
    m.chunk_fill += take;
    done += take;
    if (m.chunk_fill == m.opt.chunk_images) m.flush_chunk();
  }
}

ShardInfo ShardWriter::finish() {
  Impl& m = *impl_;
  if (m.finished) throw std::logic_error("ShardWriter::finish called twice");
  if (written() != m.opt.count) {
    throw io::DataError(m.path, "shard incomplete: " + std::to_string(written()) + " of " +
                                    std::to_string(m.opt.count) + " images written");
  }
  hdf5::QuietErrors quiet;
  m.flush_chunk();
  hdf5::check_status(H5Dwrite(m.labels.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                              m.label_bytes.data()),
                     m.tmp, "cannot write labels");
  m.digest.update(m.label_bytes.data(), m.label_bytes.size());

  ShardInfo info;
  info.path = m.path;
  info.dataset = m.opt.dataset;
  info.source = m.opt.source;
  info.split = m.opt.split;
  info.shape = m.opt.shape;
  info.count = m.opt.count;
  info.first_index = m.opt.first_index;
  info.chunk_images = m.opt.chunk_images;
  info.compression = m.opt.compression;
  info.sha256 = m.digest.hex();

  const hid_t root = m.file.get();
  hdf5::write_string_attr(root, "format", kShardFormat, m.tmp);
  hdf5::write_int_attr(root, "format_version", {kShardVersion}, m.tmp);
  hdf5::write_string_attr(root, "dataset", info.dataset, m.tmp);
  hdf5::write_string_attr(root, "source", info.source, m.tmp);
  hdf5::write_string_attr(root, "split", info.split, m.tmp);
  hdf5::write_int_attr(root, "count", {info.count}, m.tmp);
  hdf5::write_int_attr(root, "image_shape",
                       {info.shape.channels, info.shape.height, info.shape.width}, m.tmp);
  hdf5::write_int_attr(root, "first_index", {info.first_index}, m.tmp);
  hdf5::write_string_attr(root, "sha256", info.sha256, m.tmp);

  m.images.reset();
  m.labels.reset();
  hdf5::check_status(m.file.close(), m.tmp, "cannot close (disk full?)");
  // On disk before the rename makes it a shard: a crash must not leave a named, empty file.
  if (const int fd = ::open(m.tmp.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    const int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) throw io::DataError(m.tmp, std::string("cannot fsync: ") + std::strerror(errno));
  }
  if (m.opt.rename_on_finish) {
    std::error_code ec;
    fs::rename(m.tmp, m.path, ec);
    if (ec) throw io::DataError(m.path, "cannot rename " + m.tmp + " into place: " + ec.message());
  }
  m.finished = true;
  return info;
}

// ---- reader ---------------------------------------------------------------------------------

struct ShardReader::Impl {
  ShardInfo info;
  hdf5::Handle file, images, labels;
  int64_t block = 0;
  bool chunked = false;
  bool deflate_only = false;  // the filter pipeline is empty or exactly one deflate
};

namespace {

std::string describe_type(hid_t type) {
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return std::string(H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") +
             std::to_string(8 * H5Tget_size(type));
    case H5T_FLOAT:
      return "float" + std::to_string(8 * H5Tget_size(type));
    case H5T_STRING:
      return "string";
    default:
      return "a non-numeric type";
  }
}

void require_uint8(hid_t dset, const std::string& path, const char* name) {
  hdf5::Handle type(hdf5::check_id(H5Dget_type(dset), path, "cannot read type"), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_size(type.get()) != 1 ||
      H5Tget_sign(type.get()) != H5T_SGN_NONE) {
    throw io::BadDataError(path, std::string("dataset '") + name + "' has dtype " +
                                     describe_type(type.get()) + ", expected uint8");
  }
}

std::string dims_string(const std::vector<hsize_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

}  // namespace

// Long on purpose: every header field is checked against the file (and the others) before
// anything is allocated or read, one check and one message each, in the order they depend on.
ShardReader::ShardReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  ShardInfo& info = m.info;
  info.path = path;
  m.file = hdf5::open_file_readonly(path);
  hdf5::QuietErrors quiet;
  const hid_t root = m.file.get();
  const auto format = hdf5::read_string_attr(root, "format", path);
  if (!format || *format != kShardFormat) {
    throw io::BadDataError(path, std::string("not an agave image shard (attribute 'format' is ") +
                                     (format ? "'" + *format + "'" : "missing") + ", expected '" +
                                     kShardFormat + "')");
  }
  const auto version = hdf5::read_int_attr(root, "format_version", path);
  if (version && ((*version)[0] < 1 || (*version)[0] > kShardVersion)) {
    throw io::BadDataError(path, "attribute 'format_version' is " + std::to_string((*version)[0]) +
                                     "; this build reads versions 1 to " +
                                     std::to_string(kShardVersion));
  }
  auto need_int = [&](const char* name) {
    auto v = hdf5::read_int_attr(root, name, path);
    if (!v) throw io::BadDataError(path, std::string("attribute '") + name + "' is missing");
    return *v;
  };
  info.dataset = hdf5::read_string_attr(root, "dataset", path).value_or("");
  info.source = hdf5::read_string_attr(root, "source", path).value_or("");
  info.split = hdf5::read_string_attr(root, "split", path).value_or("");
  info.sha256 = hdf5::read_string_attr(root, "sha256", path).value_or("");
  info.count = need_int("count")[0];
  const auto shape = need_int("image_shape");
  if (shape.size() != 3)
    throw io::BadDataError(path, "attribute 'image_shape' must hold 3 numbers");
  info.shape = ImageShape{shape[0], shape[1], shape[2]};
  info.first_index = hdf5::read_int_attr(root, "first_index", path).value_or(std::vector{0L})[0];
  // Every number below sizes a buffer, a division or a read: checked before any is used.
  const int64_t image_bytes = io::require_image_dims(
      path, "attribute 'image_shape'", info.shape.channels, info.shape.height, info.shape.width);
  if (info.count < 1) {
    throw io::BadDataError(path, "attribute 'count' is " + std::to_string(info.count) +
                                     ", a shard holds at least 1 image");
  }
  if (info.first_index < 0) {
    throw io::BadDataError(
        path, "attribute 'first_index' is " + std::to_string(info.first_index) + ", must be >= 0");
  }
  std::error_code size_ec;
  const uint64_t file_size = fs::file_size(path, size_ec);
  if (size_ec) throw io::DataError(path, "cannot stat: " + size_ec.message());
  // Even deflated, the images cannot hold more than io::kMaxDeflateRatio bytes per stored byte; raw
  // ones (checked again below) need every byte in the file. A count beyond that would make a
  // reader allocate, or HDF5 invent fill values for, data the file does not hold.
  const auto content =
      io::checked_mul(static_cast<uint64_t>(info.count), static_cast<uint64_t>(image_bytes));
  const auto deflate_cap = io::checked_mul(file_size, io::kMaxDeflateRatio);
  if (!content || (deflate_cap && *content > *deflate_cap)) {
    throw io::BadDataError(path, "attributes 'count' " + std::to_string(info.count) +
                                     " and 'image_shape' " +
                                     io::dims_text({shape[0], shape[1], shape[2]}) +
                                     " describe more image bytes than a file of " +
                                     std::to_string(file_size) + " bytes can hold");
  }

  m.images = hdf5::open_dataset(root, "images", path);
  m.labels = hdf5::open_dataset(root, "labels", path);
  require_uint8(m.images.get(), path, "images");
  require_uint8(m.labels.get(), path, "labels");
  const auto idims = hdf5::dataset_dims(m.images.get(), path, "images");
  const std::vector<hsize_t> expect = {
      static_cast<hsize_t>(info.count), static_cast<hsize_t>(info.shape.channels),
      static_cast<hsize_t>(info.shape.height), static_cast<hsize_t>(info.shape.width)};
  if (idims != expect) {
    throw io::BadDataError(path, "dataset 'images' has shape " + dims_string(idims) +
                                     ", but the attributes 'count' and 'image_shape' say " +
                                     dims_string(expect));
  }
  const auto ldims = hdf5::dataset_dims(m.labels.get(), path, "labels");
  if (ldims != std::vector<hsize_t>{static_cast<hsize_t>(info.count)}) {
    throw io::BadDataError(path, "dataset 'labels' has shape " + dims_string(ldims) +
                                     ", expected [" + std::to_string(info.count) + "]");
  }

  hdf5::Handle dcpl(
      hdf5::check_id(H5Dget_create_plist(m.images.get()), path, "H5Dget_create_plist"), H5Pclose);
  m.block = default_chunk_images(info.shape);
  if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    hsize_t cdims[4] = {0, 0, 0, 0};
    if (H5Pget_chunk(dcpl.get(), 4, cdims) == 4) {
      // A chunk is read (and inflated) whole: its size bounds a buffer, so it is checked.
      if (cdims[0] < 1 || cdims[0] > static_cast<hsize_t>(io::kMaxChunkBytes / image_bytes)) {
        throw io::BadDataError(path, "dataset 'images' has chunks of " + std::to_string(cdims[0]) +
                                         " images; 1 to " +
                                         std::to_string(io::kMaxChunkBytes / image_bytes) +
                                         " (at most 1 GiB) allowed");
      }
      info.chunk_images = static_cast<int64_t>(cdims[0]);
      m.block = info.chunk_images;
      m.chunked = cdims[1] == expect[1] && cdims[2] == expect[2] && cdims[3] == expect[3];
    }
    const int nfilters = H5Pget_nfilters(dcpl.get());
    m.deflate_only = nfilters == 0;
    for (int i = 0; i < nfilters; ++i) {
      unsigned flags = 0, level = 0;
      size_t nelems = 1;
      const H5Z_filter_t f = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &nelems,
                                            &level, 0, nullptr, nullptr);
      if (f == H5Z_FILTER_DEFLATE && nfilters == 1) {
        m.deflate_only = true;
        info.compression = static_cast<int>(level);
      }
    }
  }
  if (m.deflate_only && info.compression == 0 && *content > file_size) {
    throw io::BadDataError(path, "dataset 'images' of " + std::to_string(*content) +
                                     " raw bytes cannot lie in a file of " +
                                     std::to_string(file_size) + " bytes (truncated?)");
  }
  // Labels are read whole into memory: as many stored bytes as labels unless filtered.
  hdf5::Handle lcpl(
      hdf5::check_id(H5Dget_create_plist(m.labels.get()), path, "H5Dget_create_plist"), H5Pclose);
  const bool labels_raw =
      H5Pget_layout(lcpl.get()) != H5D_CHUNKED || H5Pget_nfilters(lcpl.get()) == 0;
  if (static_cast<uint64_t>(info.count) > (labels_raw ? file_size : *deflate_cap)) {
    throw io::BadDataError(path, "dataset 'labels' of " + std::to_string(info.count) +
                                     " bytes cannot lie in a file of " + std::to_string(file_size) +
                                     " bytes");
  }
}

ShardReader::~ShardReader() = default;
ShardReader::ShardReader(ShardReader&&) noexcept = default;
ShardReader& ShardReader::operator=(ShardReader&&) noexcept = default;

const ShardInfo& ShardReader::info() const { return impl_->info; }
int64_t ShardReader::block_images() const { return impl_->block; }

void ShardReader::read_images(int64_t start, int64_t n, uint8_t* out) const {
  const Impl& m = *impl_;
  const ShardInfo& info = m.info;
  if (start < 0 || n < 0 || start + n > info.count) {
    throw io::DataError(info.path, "read of images [" + std::to_string(start) + ", " +
                                       std::to_string(start + n) + ") outside [0, " +
                                       std::to_string(info.count) + ")");
  }
  if (n == 0) return;
  hdf5::QuietErrors quiet;
  hsize_t off[4] = {static_cast<hsize_t>(start), 0, 0, 0};
  hsize_t cnt[4] = {static_cast<hsize_t>(n), static_cast<hsize_t>(info.shape.channels),
                    static_cast<hsize_t>(info.shape.height),
                    static_cast<hsize_t>(info.shape.width)};
  hdf5::Handle fspace(hdf5::check_id(H5Dget_space(m.images.get()), info.path, "H5Dget_space"),
                      H5Sclose);
  hdf5::check_status(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, off, nullptr, cnt, nullptr),
                     info.path, "cannot select images");
  hdf5::Handle mspace(hdf5::check_id(H5Screate_simple(4, cnt, nullptr), info.path, "H5Screate"),
                      H5Sclose);
  hdf5::check_status(
      H5Dread(m.images.get(), H5T_NATIVE_UINT8, mspace.get(), fspace.get(), H5P_DEFAULT, out),
      info.path,
      "cannot read images " + std::to_string(start) + ".." + std::to_string(start + n - 1) +
          " (truncated or corrupt?)");
}

std::vector<uint8_t> ShardReader::read_labels() const {
  const Impl& m = *impl_;
  hdf5::QuietErrors quiet;
  std::vector<uint8_t> out(static_cast<size_t>(m.info.count));
  hdf5::check_status(
      H5Dread(m.labels.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()),
      m.info.path, "cannot read labels (truncated or corrupt?)");
  return out;
}

std::optional<std::vector<ChunkLocation>> ShardReader::chunk_locations() const {
  const Impl& m = *impl_;
  if (!m.chunked || !m.deflate_only) return std::nullopt;
  const std::string& path = m.info.path;
  hdf5::QuietErrors quiet;
  hdf5::Handle fspace(hdf5::check_id(H5Dget_space(m.images.get()), path, "H5Dget_space"), H5Sclose);
  hsize_t nchunks = 0;
  hdf5::check_status(H5Dget_num_chunks(m.images.get(), fspace.get(), &nchunks), path,
                     "cannot list the chunks of 'images'");
  const int64_t expected = (m.info.count + m.block - 1) / m.block;
  if (static_cast<int64_t>(nchunks) != expected) {
    throw io::BadDataError(path, "dataset 'images' stores " + std::to_string(nchunks) +
                                     " chunks, " + std::to_string(expected) +
                                     " expected (incompletely written?)");
  }
  std::error_code ec;
  const uint64_t file_size = fs::file_size(path, ec);
  if (ec) throw io::DataError(path, "cannot stat: " + ec.message());
  const uint64_t chunk_bytes =
      static_cast<uint64_t>(m.block) * static_cast<uint64_t>(m.info.image_bytes());
  std::vector<ChunkLocation> out(static_cast<size_t>(nchunks));
  std::vector<bool> seen(static_cast<size_t>(nchunks), false);
  for (hsize_t i = 0; i < nchunks; ++i) {
    hsize_t offset[4] = {0, 0, 0, 0};
    unsigned filter_mask = 0;
    haddr_t addr = 0;
    hsize_t size = 0;
    hdf5::check_status(
        H5Dget_chunk_info(m.images.get(), fspace.get(), i, offset, &filter_mask, &addr, &size),
        path, "cannot locate a chunk of 'images'");
    const int64_t first = static_cast<int64_t>(offset[0]);
    const size_t slot = static_cast<size_t>(first / m.block);
    if (first < 0 || first % m.block != 0 || slot >= out.size() || seen[slot]) {
      throw io::BadDataError(path, "chunk index: chunk at image " + std::to_string(first) +
                                       " is misaligned or listed twice");
    }
    seen[slot] = true;
    // io::range_fits: `addr + size` would wrap around for an address near 2^64 and pass.
    if (addr == HADDR_UNDEF || !io::range_fits(addr, size, file_size)) {
      throw io::BadDataError(path, "chunk index: chunk at image " + std::to_string(first) + " (" +
                                       std::to_string(size) + " bytes at address " +
                                       std::to_string(addr) + ") lies beyond the end of the " +
                                       std::to_string(file_size) + "-byte file (truncated?)");
    }
    const bool deflated = m.info.compression > 0 && (filter_mask & 1u) == 0;
    if ((!deflated && size != chunk_bytes) || size == 0 || size > io::kMaxChunkBytes) {
      throw io::BadDataError(
          path, "chunk index: chunk at image " + std::to_string(first) + " stores " +
                    std::to_string(size) + " bytes, " +
                    (deflated ? std::string("1 to ") + std::to_string(io::kMaxChunkBytes)
                              : std::to_string(chunk_bytes)) +
                    " expected");
    }
    ChunkLocation& c = out[slot];
    c.first = first;
    c.count = std::min(m.block, m.info.count - first);
    c.offset = addr;
    c.stored_bytes = size;
    // Bit 0 set means the (only) deflate filter was skipped for this chunk.
    c.deflated = deflated;
  }
  return out;
}

void ShardReader::for_each_block(
    const std::function<void(const uint8_t*, int64_t, int64_t)>& fn) const {
  const int64_t bytes = impl_->info.image_bytes();
  // Many chunks per HDF5 call amortise its per-call cost; 4 MiB keeps memory small.
  const int64_t step =
      std::max<int64_t>(impl_->block, ((4 << 20) / bytes) / impl_->block * impl_->block);
  std::vector<uint8_t> buf(static_cast<size_t>(step * bytes));
  for (int64_t first = 0; first < impl_->info.count; first += step) {
    const int64_t n = std::min(step, impl_->info.count - first);
    read_images(first, n, buf.data());
    fn(buf.data(), first, n);
  }
}

std::string ShardReader::compute_sha256() const {
  io::Digest d;
  const int64_t bytes = impl_->info.image_bytes();
  for_each_block([&](const uint8_t* p, int64_t, int64_t n) { d.update(p, n * bytes); });
  const auto labels = read_labels();
  d.update(labels.data(), labels.size());
  return d.hex();
}

}  // namespace agave::data
