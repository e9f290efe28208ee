#pragma once
// Listing the images of an image folder's class directories, as torchvision's ImageFolder
// does: every file under DIR/SPLIT/CLASS/, subdirectories included (symbolic links followed,
// as os.walk(followlinks=True)), whose extension is .png, .jpg or .jpeg in any case. Hidden
// entries (a name starting with '.') are skipped. Order: directories by their path (byte
// order, as Python's sorted over os.walk), files by name within each.
//
// Refused with one line naming the path: an unreadable directory, a symbolic link that loops
// (to itself, or to a directory above it: a walk that follows links would never end).

#include <string>
#include <vector>

namespace resnet::data {

// The sorted, non-hidden subdirectories of `dir` (symbolic links to directories included).
std::vector<std::string> list_class_directories(const std::string& dir);

// Every image file under `dir`, in torchvision's order.
std::vector<std::string> list_images_under(const std::string& dir);

}  // namespace resnet::data
