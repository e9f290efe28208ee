#include "resnet/api/version.h"

namespace resnet {

// RESNET_VERSION comes from the project's version in CMakeLists.txt.
const char* version() {
  return RESNET_VERSION;
}

}  // namespace resnet
