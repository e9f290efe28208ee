#pragma once

namespace resnet {

// The library's version, "MAJOR.MINOR.PATCH", as its CMake package and pkg-config file
// report it (and `resnet --version` prints).
const char* version();

}  // namespace resnet
