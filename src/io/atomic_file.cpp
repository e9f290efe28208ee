#include "resnet/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <system_error>

#include "resnet/core/error.h"

namespace resnet::io {

namespace fs = std::filesystem;

namespace {

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

// pid + a process-wide counter + a random word: unique across threads and processes that
// write the same destination at once, and unlikely to collide with a stale file left by a
// crash (O_EXCL catches the rest and we retry).
std::string unique_suffix() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + "-" +
         std::to_string(rng() & 0xffffff);
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  RESNET_CHECK(!path_.empty(), "write: expected a file path, got an empty string");
  fs::path dest(path_);
  fs::path dir = dest.parent_path();
  std::string name = dest.filename().string();
  RESNET_CHECK(!name.empty(), path_ << ": expected a file path, got a directory path");
  for (int attempt = 0; attempt < 100; ++attempt) {
    fs::path temp = (dir.empty() ? fs::path(".") : dir) / ("." + name + ".tmp-" + unique_suffix());
    // 0666 so that the umask decides the final permissions, as for a plain fopen().
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      fd_ = fd;
      temp_path_ = temp.string();
      temp_exists_ = true;
      return;
    }
    int err = errno;
    RESNET_CHECK(err == EEXIST, path_ << ": expected to create temporary file " << temp.string()
                                      << ", got error: " << errno_text(err));
  }
  RESNET_FAIL(path_ << ": expected to create a temporary file next to it, got 100 name collisions");
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) discard();
}

void AtomicFileWriter::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (temp_exists_) ::unlink(temp_path_.c_str());
  temp_exists_ = false;
}

void AtomicFileWriter::write(const void* data, size_t size) {
  RESNET_CHECK(fd_ >= 0, path_ << ": expected an open temporary file, got a "
                               << (committed_ ? "committed" : "failed") << " writer");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      discard();
      RESNET_FAIL(path_ << ": expected to write " << size << " more bytes to " << temp_path_
                        << ", got error: " << errno_text(err));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  RESNET_CHECK(fd_ >= 0, path_ << ": expected an open temporary file to commit, got a "
                               << (committed_ ? "committed" : "failed") << " writer");
  // fsync before rename: otherwise a crash after the rename can leave the new name pointing
  // at a file whose data never reached the disk.
  if (::fsync(fd_) != 0) {
    int err = errno;
    discard();
    RESNET_FAIL(path_ << ": expected fsync of " << temp_path_
                      << " to succeed, got error: " << errno_text(err));
  }
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    int err = errno;
    discard();
    RESNET_FAIL(path_ << ": expected close of " << temp_path_
                      << " to succeed, got error: " << errno_text(err));
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    discard();
    RESNET_FAIL(path_ << ": expected to rename " << temp_path_
                      << " over it, got error: " << errno_text(err));
  }
  committed_ = true;
  temp_exists_ = false;
  // Make the rename itself durable. Failure here is ignored: the file is already in place
  // and complete, and some file systems refuse fsync on a directory.
  fs::path dir = fs::path(path_).parent_path();
  int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFileWriter writer(path);
  writer.write(bytes);
  writer.commit();
}

InputFile::InputFile(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  fs::file_status status = fs::status(path_, ec);
  RESNET_CHECK(!ec && fs::exists(status), path_ << ": expected an existing file, got error: "
                                                << (ec ? ec.message() : errno_text(ENOENT)));
  // Refusing directories, pipes and devices up front also means a read can never block.
  RESNET_CHECK(fs::is_regular_file(status),
               path_ << ": expected a regular file, got "
                     << (fs::is_directory(status) ? "a directory" : "a special file"));
  size_ = fs::file_size(path_, ec);
  RESNET_CHECK(!ec, path_ << ": expected a readable file size, got error: " << ec.message());
  stream_.open(path_, std::ios::binary);
  if (!stream_.is_open()) {
    int err = errno;
    RESNET_FAIL(path_ << ": expected a readable file, got error: "
                      << (err ? errno_text(err) : std::string("cannot open")));
  }
}

void InputFile::read_at(uint64_t offset, void* dst, size_t size, std::string_view what) {
  RESNET_CHECK(offset <= size_ && size <= size_ - offset,
               path_ << ": truncated file: expected " << size << " bytes of " << what
                     << " at offset " << offset << ", got a file of " << size_ << " bytes");
  if (size == 0) return;
  stream_.clear();
  stream_.seekg(static_cast<std::streamoff>(offset));
  stream_.read(static_cast<char*>(dst), static_cast<std::streamsize>(size));
  // The file can shrink between the size check and the read (another writer).
  RESNET_CHECK(stream_.good() && static_cast<size_t>(stream_.gcount()) == size,
               path_ << ": truncated file: expected " << size << " bytes of " << what
                     << " at offset " << offset << ", got " << stream_.gcount());
}

}  // namespace resnet::io
