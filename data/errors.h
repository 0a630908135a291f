#pragma once
// Errors of the data pipeline beyond those of any file read (io/errors.h).
#include "io/errors.h"

namespace agave::data {

// A download (agave_data fetch) failed: no network, HTTP error, or wrong MD5.
class FetchError : public io::DataError {
 public:
  using io::DataError::DataError;
};

}  // namespace agave::data
