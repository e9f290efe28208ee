#pragma once
// The one error type of the project, and the one check macro that throws it.
//
// Messages follow "who: expected X, got Y": name the file, tensor, layer or argument,
// say what was expected and what was found. User-input checks are always on.

#include <sstream>
#include <stdexcept>
#include <string>

namespace resnet {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace resnet

// RESNET_CHECK(cond, "conv1: expected 4-D input, got " << x.shape_str());
#define RESNET_CHECK(cond, message)                      \
  do {                                                   \
    if (!(cond)) {                                       \
      std::ostringstream resnet_check_stream_;           \
      resnet_check_stream_ << message;                   \
      throw ::resnet::Error(resnet_check_stream_.str()); \
    }                                                    \
  } while (0)

#define RESNET_FAIL(message) RESNET_CHECK(false, message)
