#pragma once
// File access for the io layer: writes that replace a file atomically, and reads checked
// against the real size of the file.
//
// AtomicFileWriter streams bytes into a temporary file next to the destination
// ("<dir>/.<name>.tmp-<unique>"); commit() flushes it to disk (fsync) and renames it over the
// destination. Until commit() returns, the destination keeps its old content; if the writer is
// destroyed without commit() (an exception, a failed write), the temporary file is removed.
// A crash can at worst leave a stray ".<name>.tmp-*" file, never a half-written destination.
//
// InputFile opens an existing regular file and learns its size before anything is read, so
// that readers can check every size a header claims against the bytes that really exist
// before allocating.
//
// Every error is a resnet::Error whose message starts with the path.

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

namespace resnet::io {

class AtomicFileWriter {
 public:
  // Creates the temporary file in the directory of `path` (which must exist).
  explicit AtomicFileWriter(std::string path);
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Appends bytes to the temporary file.
  void write(const void* data, size_t size);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  // Flushes and fsyncs the temporary file, then renames it over the destination.
  // Writing after commit() is an error.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  void discard() noexcept;

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool temp_exists_ = false;
  bool committed_ = false;
};

// Replaces the file at `path` with `bytes`, atomically (see AtomicFileWriter).
void write_file_atomic(const std::string& path, std::string_view bytes);

class InputFile {
 public:
  // Opens `path` for reading; it must exist and be a regular file.
  explicit InputFile(std::string path);

  const std::string& path() const { return path_; }
  // Size of the file in bytes, as the file system reported it when opened.
  uint64_t size() const { return size_; }
  // Reads exactly `size` bytes at `offset` into `dst`. `what` names the part being read
  // ("header", "tensor 'fc.weight'") for the error raised if the file is shorter.
  void read_at(uint64_t offset, void* dst, size_t size, std::string_view what);

 private:
  std::string path_;
  uint64_t size_ = 0;
  std::ifstream stream_;
};

}  // namespace resnet::io
