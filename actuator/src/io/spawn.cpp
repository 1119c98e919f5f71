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

SpawnResult run_program(const std::vector<std::string>& argv,
                        const std::vector<std::string>& extra_env,
                        std::chrono::milliseconds timeout, EnvFrom from) {
  SpawnResult res;
  if (argv.empty()) {
    res.error = "empty argv";
    return res;
  }
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
  std::vector<std::string> env_strings;
  env_strings.reserve(env.size());
  for (const auto& [k, v] : env) env_strings.push_back(std::string(k).append("=").append(v));
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  argp.reserve(args.size() + 1);
  for (auto& s : args) argp.push_back(s.data());
  argp.push_back(nullptr);

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    res.error = std::string("pipe: ") + std::strerror(errno);
    return res;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The daemon blocks SIGTERM/SIGINT/SIGHUP for its signalfd and ignores SIGPIPE: a child
  // inheriting that could not be stopped and would misbehave on pipes.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t dfl;
  sigemptyset(&dfl);
  for (int s : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&dfl, s);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argp[0], &fa, &attr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    res.error = argv[0] + ": " + std::strerror(rc);
    return res;
  }
  res.started = true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left_ms = [&] {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<std::int64_t>(0, d.count()));
  };
  // Read stdout until EOF (the child and anything it left behind closed it) or the deadline.
  bool eof = false;
  while (!eof && left_ms() > 0) {
    pollfd p{pipefd[0], POLLIN, 0};
    const int n = ::poll(&p, 1, left_ms());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    char buf[4096];
    const ssize_t got = ::read(pipefd[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      eof = true;
    } else if (res.out.size() < kMaxOut) {
      res.out.append(
          buf, std::min<std::size_t>(static_cast<std::size_t>(got), kMaxOut - res.out.size()));
    }
  }
  ::close(pipefd[0]);
  int status = 0;
  while (true) {
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      res.exit_code = decode_status(status);
      return res;
    }
    if (w < 0 && errno != EINTR) {
      res.exit_code = -1;
      return res;
    }
    if (left_ms() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  res.timed_out = true;
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  res.exit_code = decode_status(status);
  return res;
}

}  // namespace trading_heal::actuator
