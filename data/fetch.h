#pragma once
// `agave_data fetch`: downloads with /usr/bin/curl (no HTTP code of our own) and verifies MD5.
#include <cstdint>
#include <string>

#include "data/progress.h"

namespace agave::data {

inline constexpr const char* kCifar10Url =
    "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
inline constexpr const char* kCifar10Md5 = "c32a1d4ab5d03f1284b67883e8d87530";
inline constexpr int64_t kCifar10Bytes = 170052171;

// Downloads `url` to `<dest>.tmp`, checks its MD5 (when md5 is not empty) and renames it to
// `dest`. A `dest` that already has the right MD5 is kept. Throws FetchError with one line
// (curl's own last line for network errors) and leaves no file behind on failure.
void download(const std::string& url, const std::string& dest, const std::string& md5,
              int64_t expected_bytes = 0, const ProgressFn& progress = {});

// The official CIFAR-10 binary archive into `dir`; returns its path.
std::string fetch_cifar10(const std::string& dir, const ProgressFn& progress = {},
                          const std::string& url = kCifar10Url);

}  // namespace agave::data
