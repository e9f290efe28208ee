// IDX content behind a valid gzip stream (data/idx.h, data/byte_reader.h): the input is
// compressed before it is read, so mutations reach the IDX header and the decompressed-size
// checks instead of stopping at the gzip CRC.
#include <zlib.h>

#include <vector>

#include "fuzz_support.h"
#include "resnet/core/error.h"
#include "resnet/data/idx.h"

namespace {

std::vector<uint8_t> gzip(const uint8_t* data, size_t size) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    std::abort();
  std::vector<uint8_t> out(deflateBound(&z, size));
  z.next_in = const_cast<uint8_t*>(data);
  z.avail_in = static_cast<uInt>(size);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  resnet::fuzz::pin_one_thread();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> compressed = gzip(data, size);
  const std::string& path =
      resnet::fuzz::scratch_file(compressed.data(), compressed.size(), "-ubyte.gz");
  RESNET_FUZZ_EXPECT_ERRORS(resnet::data::read_idx_images(path));
  RESNET_FUZZ_EXPECT_ERRORS(resnet::data::read_idx_labels(path));
  return 0;
}
