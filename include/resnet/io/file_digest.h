#pragma once
// SHA-256 of a file's bytes (OpenSSL's EVP), as lowercase hex: `sha256sum FILE`'s first
// column. Records which pretrained weights a fine-tuning run started from.

#include <string>

namespace resnet::io {

// Errors name the file (missing, unreadable).
std::string sha256_file(const std::string& path);

}  // namespace resnet::io
