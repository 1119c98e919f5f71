#include "trading_heal/actuator/state_file.hpp"

#include "trading_heal/common/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace trading_heal::actuator {
namespace {
std::string err(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}
}  // namespace

tl::expected<std::optional<std::string>, std::string> read_state_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::optional<std::string>();
    return tl::unexpected(err("cannot read", path));
  }
  std::ostringstream s;
  s << in.rdbuf();
  return std::optional<std::string>(s.str());
}

tl::expected<void, std::string> write_state_file(const std::string& path, const std::string& text) {
  return common::replace_file(path, text, 0640);
}

std::string quarantine_state_file(const std::string& path, const std::string& suffix) {
  std::string aside = path + ".corrupt-" + suffix;
  if (::rename(path.c_str(), aside.c_str()) != 0) return {};
  return aside;
}

}  // namespace trading_heal::actuator
