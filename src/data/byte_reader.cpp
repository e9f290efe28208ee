#include "resnet/data/byte_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "resnet/core/error.h"
#include "resnet/io/atomic_file.h"

namespace resnet::data {

namespace fs = std::filesystem;

namespace {

// zlib's technical note: deflate expands at most 1032:1 (258-byte matches coded in 2 bits).
constexpr uint64_t kMaxDeflateRatio = 1032;
// The most a gzip stream may decompress to: more than any dataset read whole into memory
// should hold (Fashion-MNIST's largest file is 47 MB); a stream beyond it is refused.
constexpr uint64_t kMaxGzipContent = uint64_t{4} << 30;
// Buffers grow in steps of this much, so a lying header costs at most one step.
constexpr size_t kChunk = size_t{1} << 20;
// expect_end() counts surplus bytes up to this many.
constexpr uint64_t kCountLimit = uint64_t{64} << 20;

gzFile as_gz(void* p) {
  return static_cast<gzFile>(p);
}

}  // namespace

ByteReader::ByteReader(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  fs::file_status status = fs::status(path_, ec);
  RESNET_CHECK(!ec && fs::exists(status), path_
                                              << ": expected an existing file, got "
                                              << (ec ? ec.message() : std::string("no such file")));
  // A directory or a pipe would fail or block inside zlib; refuse them by name instead.
  RESNET_CHECK(fs::is_regular_file(status),
               path_ << ": expected a regular file, got "
                     << (fs::is_directory(status) ? "a directory" : "a special file"));
  file_size_ = fs::file_size(path_, ec);
  RESNET_CHECK(!ec, path_ << ": expected a readable file size, got " << ec.message());
  {
    std::ifstream sniff(path_, std::ios::binary);
    RESNET_CHECK(sniff.is_open(), path_ << ": expected a readable file, got "
                                        << std::generic_category().message(errno));
    unsigned char magic[2] = {0, 0};
    sniff.read(reinterpret_cast<char*>(magic), 2);
    gzip_ = sniff.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  }
  gzFile gz = gzopen(path_.c_str(), "rb");
  RESNET_CHECK(gz != nullptr, path_ << ": expected a readable file, got "
                                    << std::generic_category().message(errno));
  gz_ = gz;
  gzbuffer(gz, 1 << 17);
}

ByteReader::~ByteReader() {
  if (gz_) gzclose(as_gz(gz_));
}

uint64_t ByteReader::max_content_size() const {
  if (!gzip_) return file_size_;
  return std::min(
      file_size_ > UINT64_MAX / kMaxDeflateRatio ? UINT64_MAX : file_size_ * kMaxDeflateRatio,
      kMaxGzipContent);
}

size_t ByteReader::read_some(void* dst, size_t size) {
  size_t done = 0;
  char* out = static_cast<char*>(dst);
  while (done < size) {
    unsigned step = static_cast<unsigned>(std::min<size_t>(size - done, kChunk));
    int n = gzread(as_gz(gz_), out + done, step);
    if (n < 0) {
      int errnum = 0;
      const char* msg = gzerror(as_gz(gz_), &errnum);
      RESNET_FAIL(path_ << ": expected a valid " << (gzip_ ? "gzip stream" : "file")
                        << ", got a read error after " << position_ + done
                        << " bytes: " << (msg ? msg : "unknown zlib error"));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
    RESNET_CHECK(!gzip_ || position_ + done <= kMaxGzipContent,
                 path_ << ": expected a gzip stream of at most " << kMaxGzipContent
                       << " bytes decompressed, got more (a decompression bomb?)");
  }
  position_ += done;
  return done;
}

void ByteReader::read_exact(void* dst, size_t size, std::string_view what) {
  const uint64_t start = position_;
  size_t got = read_some(dst, size);
  if (got == size) return;
  // zlib reports a gzip stream cut short as an error only on the next read; say so plainly.
  int errnum = Z_OK;
  const char* msg = gzerror(as_gz(gz_), &errnum);
  RESNET_FAIL(path_ << ": truncated " << (gzip_ ? "gzip stream" : "file") << ": expected " << size
                    << " bytes of " << what << " at offset " << start << ", got " << got
                    << (errnum != Z_OK && msg ? std::string(" (") + msg + ")" : std::string()));
}

std::vector<uint8_t> ByteReader::read_vector(uint64_t size, std::string_view what) {
  std::vector<uint8_t> out;
  const uint64_t start = position_;
  while (out.size() < size) {
    size_t step = static_cast<size_t>(std::min<uint64_t>(size - out.size(), kChunk));
    size_t old = out.size();
    out.resize(old + step);
    size_t got = read_some(out.data() + old, step);
    if (got < step) {
      RESNET_FAIL(path_ << ": truncated " << (gzip_ ? "gzip stream" : "file") << ": expected "
                        << size << " bytes of " << what << " at offset " << start << ", got "
                        << old + got);
    }
  }
  return out;
}

void ByteReader::expect_end(std::string_view what) {
  char extra[4096];
  const uint64_t end = position_;
  size_t got = read_some(extra, sizeof extra);
  if (got == 0) return;
  // Count what is left for a precise message, but stop early: a gzip bomb could otherwise
  // keep us decompressing for a long time just to report it.
  uint64_t more = got;
  while (more < kCountLimit && (got = read_some(extra, sizeof extra)) > 0) more += got;
  RESNET_FAIL(path_ << ": expected " << what << " to end after " << end << " bytes, got "
                    << (more >= kCountLimit ? "at least " : "") << more << " more"
                    << (gzip_ ? " (decompressed)" : ""));
}

void write_gzip_file(const std::string& path, std::string_view bytes) {
  RESNET_CHECK(bytes.size() < (uint64_t{1} << 31),
               path << ": expected less than 2 GiB to compress, got " << bytes.size() << " bytes");
  z_stream zs{};
  // windowBits 15 + 16: a gzip wrapper rather than a raw zlib stream.
  RESNET_CHECK(deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK,
               path << ": expected zlib to start compressing, got an error");
  std::string out(deflateBound(&zs, static_cast<uLong>(bytes.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  RESNET_CHECK(rc == Z_STREAM_END, path << ": expected zlib to compress " << bytes.size()
                                        << " bytes, got error " << rc);
  io::write_file_atomic(path, out);
}

}  // namespace resnet::data
