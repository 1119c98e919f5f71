#include "trading_heal/actuator/spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

extern char** environ;

namespace trading_heal::actuator {
namespace {

constexpr std::size_t kMaxOut = std::size_t{64} * 1024;

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// The child's environment as KEY=VALUE strings: the daemon's (all of it, or only kMinimalEnv,
// with a PATH), then `extra_env` on top.
std::vector<std::string> child_env(const std::vector<std::string>& extra_env, EnvFrom from) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = kv.substr(0, eq);
    if (from == EnvFrom::kMinimal &&
        std::find(std::begin(kMinimalEnv), std::end(kMinimalEnv), key) == std::end(kMinimalEnv)) {
      continue;
    }
    env[key] = kv.substr(eq + 1);
  }
  if (from == EnvFrom::kMinimal && env.count("PATH") == 0) {
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  }
  for (const auto& kv : extra_env) {
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(std::string(k).append("=").append(v));
  return out;
}

// A NULL-terminated array of pointers into `strings` (which must outlive it).
std::vector<char*> c_array(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Starts the child with stdin /dev/null, stdout to `out_fd`, and the signals the daemon blocks
// or ignores back to their defaults (a child inheriting them could not be stopped and would
// misbehave on pipes). posix_spawnp's error number (0: started).
int spawn_child(pid_t& pid, char* const* argp, char* const* envp, int out_fd) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t dfl;
  sigemptyset(&dfl);
  for (int s : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&dfl, s);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  const int rc = ::posix_spawnp(&pid, argp[0], &fa, &attr, argp, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return rc;
}

using Deadline = std::chrono::steady_clock::time_point;

int ms_left(Deadline deadline) {
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now());
  return static_cast<int>(std::max<std::int64_t>(0, d.count()));
}

// Reads `fd` until EOF (the child and anything it left behind closed it) or the deadline; keeps
// at most kMaxOut bytes.
void read_output(int fd, Deadline deadline, std::string& out) {
  while (ms_left(deadline) > 0) {
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, ms_left(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    char buf[4096];
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return;
    if (out.size() < kMaxOut) {
      out.append(buf, std::min<std::size_t>(static_cast<std::size_t>(got), kMaxOut - out.size()));
    }
  }
}

// Reaps the child by the deadline, or kills it then (timed_out).
void reap(pid_t pid, Deadline deadline, SpawnResult& res) {
  int status = 0;
  while (true) {
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      res.exit_code = decode_status(status);
      return;
    }
    if (w < 0 && errno != EINTR) {
      res.exit_code = -1;
      return;
    }
    if (ms_left(deadline) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  res.timed_out = true;
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  res.exit_code = decode_status(status);
}

}  // namespace

std::string SpawnResult::describe() const {
  if (!started) return "cannot start: " + error;
  if (timed_out) return "timed out";
  return "exit " + std::to_string(exit_code);
}

std::vector<std::string> split_argv(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

SpawnResult run_program(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                        const ChildEnv& child) {
  SpawnResult res;
  if (argv.empty()) {
    res.error = "empty argv";
    return res;
  }
  std::vector<std::string> env = child_env(child.extra, child.from);
  std::vector<std::string> args = argv;
  const std::vector<char*> envp = c_array(env);
  const std::vector<char*> argp = c_array(args);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    res.error = std::string("pipe: ") + std::strerror(errno);
    return res;
  }
  pid_t pid = -1;
  const int rc = spawn_child(pid, argp.data(), envp.data(), pipefd[1]);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    res.error = argv[0] + ": " + std::strerror(rc);
    return res;
  }
  res.started = true;
  const Deadline deadline = std::chrono::steady_clock::now() + timeout;
  read_output(pipefd[0], deadline, res.out);
  ::close(pipefd[0]);
  reap(pid, deadline, res);
  return res;
}

}  // namespace trading_heal::actuator
