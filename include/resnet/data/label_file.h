#pragma once
// Class-name files: one class name per line, line i naming class i (the format of the
// ImageNet class lists shipped with most model zoos). A final newline is optional, "\r\n"
// line ends are accepted, and surrounding spaces are kept; an empty line is refused, since
// it would shift every class after it.

#include <cstdint>
#include <string>
#include <vector>

namespace resnet::data {

// The names in `path`; when `expected_count` > 0, there must be exactly that many
// (errors name the file and say what was expected and what was found).
std::vector<std::string> read_label_file(const std::string& path, int64_t expected_count = 0);

}  // namespace resnet::data
