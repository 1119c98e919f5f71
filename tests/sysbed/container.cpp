#include "container.hpp"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "support/bed.hpp"

namespace trading_heal::test {

Output host_sh(const std::string& cmd) {
  Output r;
  const std::string full = "exec 2>&1; " + cmd;
  FILE* p = ::popen(("bash -c " + shq(full)).c_str(), "r");
  if (p == nullptr) throw std::runtime_error("popen failed");
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int rc = ::pclose(p);
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r;
}

std::string shq(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string Container::sysbed() { return Bed::source_dir() + "/tests/sysbed/sysbed.sh"; }

Container::~Container() {
  if (booted_) stop();
}

bool Container::boot(std::string* why) {
  Output r = host_sh(shq(sysbed()) + " boot " + shq(name_));
  booted_ = true;  // whatever happened, stop() cleans up
  if (!r.ok() && why != nullptr) *why = r.out;
  return r.ok();
}

Output Container::sh(const std::string& script, const std::string& user) const {
  std::string inner = "bash -c " + shq(script);
  if (!user.empty()) inner = "runuser -u " + shq(user) + " -- " + inner;
  return host_sh(shq(sysbed()) + " exec " + shq(name_) + " " + inner);
}

bool Container::put(const std::string& host_path, const std::string& path,
                    const std::string& mode) const {
  return host_sh(shq(sysbed()) + " put " + shq(name_) + " " + shq(host_path) + " " + shq(path) +
                 " " + mode)
      .ok();
}

long Container::main_pid(const std::string& unit) const {
  Output r = sh("systemctl show -p MainPID --value " + shq(unit));
  try {
    return r.ok() ? std::stol(r.out) : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

std::string Container::stop() {
  if (!booted_) return {};
  booted_ = false;
  // The container's PID 1 and its start time: after the stop, no such process may exist.
  const std::string pid1 = host_sh(shq(sysbed()) + " pid1 " + shq(name_) + " 2>/dev/null").out;
  const auto started = [](const std::string& pid) {
    return host_sh("awk '{print $22}' /proc/" + pid + "/stat 2>/dev/null").out;
  };
  const std::string pid1_start = pid1.empty() ? "" : started(pid1);
  Output r = host_sh(shq(sysbed()) + " stop " + shq(name_));
  std::string left;
  if (!r.ok()) left += "sysbed.sh stop failed: " + r.out + "\n";
  // Nothing of it on the host: its cgroups, a process in them, a mount of its rootfs.
  Output cg = host_sh("find /sys/fs/cgroup -maxdepth 2 -name 'trading-heal-sysbed-" + name_ + "'");
  if (!cg.out.empty()) left += "cgroups left: " + cg.out + "\n";
  Output mounts = host_sh("grep -F " + shq("/" + name_) + " /proc/mounts | grep -F nspawn || true");
  if (!mounts.out.empty()) left += "mounts left: " + mounts.out + "\n";
  Output running = host_sh(shq(sysbed()) + " status");
  if (running.out.find(name_ + ":") != std::string::npos) left += "still running: " + running.out;
  if (!pid1.empty() && !pid1_start.empty() && started(pid1) == pid1_start) {
    left += "its PID 1 (" + pid1 + ") still runs\n";
  }
  return left;
}

}  // namespace trading_heal::test
