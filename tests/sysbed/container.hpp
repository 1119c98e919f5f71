// One booted system-mode container (tests/sysbed/sysbed.sh) for the system tests: commands run
// inside as root or as a given user, files copied in, and a teardown that proves nothing of it
// is left on the host (no process, cgroup or mount).
#pragma once

#include <string>

namespace trading_heal::test {

struct Output {
  int status = -1;
  std::string out;  // stdout and stderr, trailing newlines stripped
  bool ok() const { return status == 0; }
};

// A command on the host, under bash; stdout and stderr captured.
Output host_sh(const std::string& cmd);
// 'quoted' for bash.
std::string shq(const std::string& s);

class Container {
 public:
  explicit Container(std::string name) : name_(std::move(name)) {}
  Container(const Container&) = delete;
  Container& operator=(const Container&) = delete;
  ~Container();

  // sysbed.sh boot NAME; false (with the reason in `why`) when it did not boot.
  bool boot(std::string* why);
  // `script` under bash inside the container: as root, or as `user` (runuser, no login shell).
  Output sh(const std::string& script, const std::string& user = "") const;
  bool put(const std::string& host_path, const std::string& path, const std::string& mode) const;
  // MainPID of a unit inside (0 when it has none).
  long main_pid(const std::string& unit) const;
  // Halts the container and checks that nothing of it is left; returns what was left ("" = clean).
  std::string stop();
  const std::string& name() const { return name_; }

  static std::string sysbed();  // the path of sysbed.sh

 private:
  std::string name_;
  bool booted_ = false;
};

}  // namespace trading_heal::test
