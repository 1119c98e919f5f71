// Running a program from an argv (never a shell) with a deadline: systemctl, sudo, hooks.
// Blocking: call it from a worker thread, never from the loop. Thread-safe (no shared state).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace trading_heal::actuator {

struct SpawnResult {
  bool started = false;
  int exit_code = -1;  // 128+N when killed by signal N
  bool timed_out = false;
  std::string out;    // stdout, at most 64 KiB
  std::string error;  // why it could not be started
  bool ok() const { return started && !timed_out && exit_code == 0; }
  std::string describe() const;  // "exit 1", "timed out after ...", "cannot start: ..."
};

// What the child's environment starts from: the whole of ours (systemctl needs the user
// manager's XDG_RUNTIME_DIR and bus address), or only kMinimalEnv's variables (hooks: nothing of
// the daemon's settings, no secret a misplaced env line could hold).
enum class EnvFrom { kInherit, kMinimal };
inline constexpr const char* kMinimalEnv[] = {"PATH", "LANG", "LC_ALL", "TZ",
                                              "HOME", "USER", "LOGNAME"};

// The child's environment: `extra` (KEY=VALUE) on top of what `from` gives.
struct ChildEnv {
  std::vector<std::string> extra;
  EnvFrom from = EnvFrom::kInherit;
};

// argv[0] is searched in PATH. The child gets an empty signal mask, default dispositions, stdin
// from /dev/null; it is killed (SIGKILL) and reaped when `timeout` passes.
SpawnResult run_program(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                        const ChildEnv& env = {});

// Splits a hook setting into argv on blanks. No quoting, no expansion: there is no shell.
std::vector<std::string> split_argv(const std::string& s);

}  // namespace trading_heal::actuator
