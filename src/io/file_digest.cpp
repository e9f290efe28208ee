#include "resnet/io/file_digest.h"

#include <openssl/evp.h>

#include <fstream>
#include <memory>
#include <vector>

#include "resnet/core/error.h"

namespace resnet::io {

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RESNET_CHECK(in, path << ": cannot read (expected a file to take the SHA-256 of)");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  RESNET_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1,
               "SHA-256: OpenSSL could not start a digest");
  std::vector<char> chunk(1 << 20);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto got = static_cast<size_t>(in.gcount());
    if (got > 0)
      RESNET_CHECK(EVP_DigestUpdate(ctx.get(), chunk.data(), got) == 1,
                   path << ": SHA-256 update failed");
  }
  RESNET_CHECK(in.eof(), path << ": read error while taking its SHA-256");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  RESNET_CHECK(EVP_DigestFinal_ex(ctx.get(), digest, &size) == 1,
               path << ": SHA-256 final step failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

}  // namespace resnet::io
