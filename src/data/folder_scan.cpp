#include "resnet/data/folder_scan.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "resnet/core/error.h"

namespace resnet::data {

namespace fs = std::filesystem;

namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// What `path` is once symbolic links are followed; a link that loops is refused.
struct Target {
  bool exists = false;
  bool directory = false;
  bool regular = false;
  std::pair<dev_t, ino_t> id{};
};

Target follow(const fs::path& path) {
  struct stat st {};
  Target t;
  if (::stat(path.c_str(), &st) != 0) {
    RESNET_CHECK(errno != ELOOP, path.string() << ": expected a file or directory, got a symbolic "
                                                  "link loop ("
                                               << std::strerror(errno) << ")");
    return t;  // a dangling link or an entry that vanished: not an image, skipped
  }
  t.exists = true;
  t.directory = S_ISDIR(st.st_mode);
  t.regular = S_ISREG(st.st_mode);
  t.id = {st.st_dev, st.st_ino};
  return t;
}

// Lists `dir` (not recursing), refusing an unreadable directory by name.
std::vector<fs::path> entries_of(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!hidden(it->path())) out.push_back(it->path());
  }
  RESNET_CHECK(!ec, dir.string() << ": expected a readable directory, got " << ec.message());
  return out;
}

struct Walk {
  // Directories on the path from the class directory down to the one being listed, to
  // recognise a link back up (which would make the walk endless).
  std::vector<std::pair<std::pair<dev_t, ino_t>, std::string>> ancestors;
  std::vector<std::pair<std::string, std::vector<std::string>>> dirs;  // (dir, its images)

  void visit(const fs::path& dir, std::pair<dev_t, ino_t> id) {
    for (const auto& [seen, where] : ancestors) {
      RESNET_CHECK(seen != id, dir.string() << ": expected a folder tree without cycles, got a "
                                               "symbolic link loop back to "
                                            << where);
    }
    ancestors.push_back({id, dir.string()});
    std::vector<std::string> files;
    std::vector<std::pair<fs::path, Target>> subdirs;
    for (const fs::path& p : entries_of(dir)) {
      const Target t = follow(p);
      if (t.directory) {
        subdirs.push_back({p, t});
      } else if (t.regular && is_image_name(p)) {
        files.push_back(p.string());
      }
    }
    std::sort(files.begin(), files.end());
    dirs.push_back({dir.string(), std::move(files)});
    for (const auto& [p, t] : subdirs) visit(p, t.id);
    ancestors.pop_back();
  }
};

}  // namespace

std::vector<std::string> list_class_directories(const std::string& dir) {
  std::vector<std::string> names;
  for (const fs::path& p : entries_of(dir)) {
    if (follow(p).directory) names.push_back(p.filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> list_images_under(const std::string& dir) {
  Walk walk;
  const Target root = follow(dir);
  RESNET_CHECK(root.directory, dir << ": expected a directory of images, got "
                                   << (root.exists ? "a file" : "no such directory"));
  walk.visit(dir, root.id);
  std::sort(walk.dirs.begin(), walk.dirs.end());
  std::vector<std::string> images;
  for (auto& [d, files] : walk.dirs) {
    for (std::string& f : files) images.push_back(std::move(f));
  }
  return images;
}

}  // namespace resnet::data
