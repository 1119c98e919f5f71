#include "trading_heal/actuator/state_file.hpp"

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
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return tl::unexpected(err("cannot create", tmp));
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      auto e = err("cannot write", tmp);
      ::close(fd);
      return tl::unexpected(e);
    }
    done += static_cast<std::size_t>(n);
  }
  // A failed fsync cannot be retried on the same data: the temp file is abandoned and the next
  // save writes a fresh one.
  if (::fsync(fd) != 0) {
    auto e = err("cannot fsync", tmp);
    ::close(fd);
    return tl::unexpected(e);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return tl::unexpected(err("cannot rename", tmp));
  auto dir = std::filesystem::path(path).parent_path();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

std::string quarantine_state_file(const std::string& path, const std::string& suffix) {
  const std::string aside = path + ".corrupt-" + suffix;
  if (::rename(path.c_str(), aside.c_str()) != 0) return {};
  return aside;
}

}  // namespace trading_heal::actuator
