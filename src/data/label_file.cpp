#include "resnet/data/label_file.h"

#include <fstream>

#include "resnet/core/error.h"

namespace resnet::data {

std::vector<std::string> read_label_file(const std::string& path, int64_t expected_count) {
  std::ifstream in(path, std::ios::binary);
  RESNET_CHECK(in, path << ": expected a readable class-name file, got none (cannot open it)");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    RESNET_CHECK(!line.empty(), path << ": line " << names.size() + 1
                                     << ": expected a class name, got an empty line");
    names.push_back(line);
  }
  RESNET_CHECK(!in.bad(), path << ": read error after " << names.size() << " lines");
  RESNET_CHECK(expected_count <= 0 || static_cast<int64_t>(names.size()) == expected_count,
               path << ": expected " << expected_count
                    << " class names (one per line, one per model output), got " << names.size());
  return names;
}

}  // namespace resnet::data
