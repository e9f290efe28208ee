#pragma once
// ByteReader: sequential reads from a file that may be gzip-compressed, checked against what
// really exists.
//
// A gzip stream (magic 1f 8b) is decompressed on the fly with zlib; any other file is read
// as is. Every read names the file and the part being read when it comes up short, and
// read_vector() grows its buffer only as data arrives, so a hostile header that claims
// gigabytes costs no memory beyond the bytes that are really there. expect_end() refuses
// data beyond what a header implied (and, for gzip, surfaces a bad CRC at the stream's end).
//
// Every error is a one-line resnet::Error that starts with the path.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace resnet::data {

class ByteReader {
 public:
  // Opens `path`; it must be an existing regular file.
  explicit ByteReader(std::string path);
  ~ByteReader();
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;

  const std::string& path() const { return path_; }
  bool gzip() const { return gzip_; }
  // Size of the file on disk (compressed size for gzip).
  uint64_t file_size() const { return file_size_; }
  // Largest content size the file can possibly hold: the file size, or for gzip the file
  // size times deflate's largest expansion ratio (1032:1), and at most 4 GiB: a gzip
  // stream that decompresses to more is refused as it reaches the limit.
  uint64_t max_content_size() const;
  // Content bytes consumed so far.
  uint64_t position() const { return position_; }

  // Reads exactly `size` bytes; `what` names the part ("header", "labels").
  void read_exact(void* dst, size_t size, std::string_view what);
  // Reads exactly `size` bytes into a vector that grows as the data arrives.
  std::vector<uint8_t> read_vector(uint64_t size, std::string_view what);
  // Requires that no content byte remains after `what`.
  void expect_end(std::string_view what);

 private:
  // Reads up to `size` bytes; returns how many (0 at the end); throws on corrupt gzip data.
  size_t read_some(void* dst, size_t size);

  std::string path_;
  bool gzip_ = false;
  uint64_t file_size_ = 0;
  uint64_t position_ = 0;
  void* gz_ = nullptr;  // gzFile; void* keeps zlib.h out of this header
};

// Writes `bytes` gzip-compressed to `path`, atomically (temporary file, fsync, rename).
void write_gzip_file(const std::string& path, std::string_view bytes);

}  // namespace resnet::data
