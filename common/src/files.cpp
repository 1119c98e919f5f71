#include "trading_heal/common/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace trading_heal::common {

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

void fsync_dir_of(const std::string& path) {
  const auto dir = std::filesystem::path(path).parent_path();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

tl::expected<void, std::string> replace_file(const std::string& path, std::string_view text,
                                             mode_t mode) {
  const std::string tmp = path + ".tmp";
  auto fail = [&](const char* what, const std::string& file) {
    return tl::unexpected(std::string(what) + " " + file + ": " + std::strerror(errno));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return fail("cannot create", tmp);
  if (!write_all(fd, text.data(), text.size())) {
    auto e = fail("cannot write", tmp);
    ::close(fd);
    return e;
  }
  // A failed fsync cannot be retried on the same data: the temp file is abandoned.
  if (::fsync(fd) != 0) {
    auto e = fail("cannot fsync", tmp);
    ::close(fd);
    return e;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename", tmp);
  fsync_dir_of(path);
  return {};
}

}  // namespace trading_heal::common
