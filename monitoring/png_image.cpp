#include "monitoring/png_image.h"

#include <png.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace agave::monitoring {
namespace {

struct File {
  std::FILE* f;
  ~File() {
    if (f) std::fclose(f);
  }
};

void png_warn(png_structp, png_const_charp) {}

// libpng reports errors by longjmp; these keep every C++ object outside the jump's scope.
bool write_rows(png_structp png, png_infop info, std::FILE* f, const Image& image) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_init_io(png, f);
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.width),
               static_cast<png_uint_32>(image.height), 8,
               image.channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  const int64_t stride = image.width * image.channels;
  for (int64_t y = 0; y < image.height; ++y) {
    png_write_row(png, const_cast<png_bytep>(image.pixels.data() + y * stride));
  }
  png_write_end(png, nullptr);
  return true;
}

// Returns an error message, or nullptr on success.
const char* read_header(png_structp png, png_infop info, std::FILE* f, Image* image) {
  if (setjmp(png_jmpbuf(png))) return "corrupt or truncated PNG";
  png_init_io(png, f);
  png_read_info(png, info);
  if (png_get_bit_depth(png, info) != 8) return "not an 8-bit PNG";
  const int type = png_get_color_type(png, info);
  if (type != PNG_COLOR_TYPE_GRAY && type != PNG_COLOR_TYPE_RGB) {
    return "only gray and RGB PNGs are read";
  }
  image->height = png_get_image_height(png, info);
  image->width = png_get_image_width(png, info);
  image->channels = type == PNG_COLOR_TYPE_RGB ? 3 : 1;
  return nullptr;
}

bool read_rows(png_structp png, Image* image) {
  if (setjmp(png_jmpbuf(png))) return false;
  for (int64_t y = 0; y < image->height; ++y) {
    png_read_row(png, image->pixels.data() + y * image->width * image->channels, nullptr);
  }
  return true;
}

}  // namespace

void write_png(const std::string& path, const Image& image) {
  if (image.channels != 1 && image.channels != 3) {
    throw std::invalid_argument(path + ": PNG images must have 1 or 3 channels");
  }
  if (static_cast<int64_t>(image.pixels.size()) != image.height * image.width * image.channels) {
    throw std::invalid_argument(path + ": image buffer does not match its size");
  }
  const std::string tmp = path + ".tmp";
  {
    File file{std::fopen(tmp.c_str(), "wb")};
    if (!file.f) throw std::runtime_error(path + ": cannot write PNG");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, png_warn);
    png_infop info = png_create_info_struct(png);
    const bool ok = write_rows(png, info, file.f, image);
    png_destroy_write_struct(&png, &info);
    if (!ok || std::fflush(file.f) != 0) {
      std::fclose(file.f);
      file.f = nullptr;
      std::filesystem::remove(tmp);
      throw std::runtime_error(path + ": cannot write PNG");
    }
  }
  std::filesystem::rename(tmp, path);
}

Image read_png(const std::string& path) {
  File file{std::fopen(path.c_str(), "rb")};
  if (!file.f) throw std::runtime_error(path + ": cannot open PNG");
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, png_warn);
  png_infop info = png_create_info_struct(png);
  Image image;
  const char* error = read_header(png, info, file.f, &image);
  if (!error) {
    image.pixels.resize(image.height * image.width * image.channels);
    if (!read_rows(png, &image)) error = "corrupt or truncated PNG";
  }
  png_destroy_read_struct(&png, &info, nullptr);
  if (error) throw std::runtime_error(path + ": " + error);
  return image;
}

}  // namespace agave::monitoring
