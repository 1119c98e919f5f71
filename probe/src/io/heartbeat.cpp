// Reading heartbeat files.
#include "trading_heal/probe/heartbeat.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace trading_heal::probe {

std::optional<double> read_heartbeat(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  char buf[64];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  return parse_heartbeat(std::string_view(buf, static_cast<std::size_t>(n)));
}

}  // namespace trading_heal::probe
