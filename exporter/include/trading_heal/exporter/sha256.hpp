// SHA-256 of a byte string as 64 lowercase hex digits (OpenSSL libcrypto). Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace trading_heal::exporter {

std::string sha256_hex(std::string_view data);

}  // namespace trading_heal::exporter
