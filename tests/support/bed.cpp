#include "support/bed.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace trading_heal::test {
namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : fallback;
}

std::string with_env(const std::string& cmd) {
  return "set -a; . '" + Bed::dir() + "/env'; set +a; " + cmd;
}

}  // namespace

std::string Bed::dir() { return env_or("TRADING_HEAL_BED_DIR", TH_DEFAULT_BED_DIR); }
std::string Bed::bin(const std::string& name) {
  return env_or("TRADING_HEAL_BIN_DIR", TH_DEFAULT_BIN_DIR) + "/" + name;
}
std::string Bed::source_dir() { return env_or("TRADING_HEAL_SOURCE_DIR", TH_DEFAULT_SOURCE_DIR); }

const std::map<std::string, std::string>& Bed::env() {
  static const std::map<std::string, std::string> values = [] {
    std::map<std::string, std::string> out;
    std::ifstream in(dir() + "/env");
    if (!in) throw std::runtime_error("testbed is not running: no " + dir() + "/env");
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
      out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
  }();
  return values;
}

std::string Bed::get(const std::string& key) {
  auto it = env().find(key);
  if (it == env().end()) {
    ADD_FAILURE() << "testbed env has no " << key;
    return {};
  }
  return it->second;
}

void Bed::export_env() {
  for (const auto& [k, v] : env()) ::setenv(k.c_str(), v.c_str(), 1);
}

int Bed::sh(const std::string& cmd) {
  int rc = std::system(with_env(cmd).c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

std::string Bed::sh_out(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = ::popen(with_env(cmd).c_str(), "r");
  if (p == nullptr) throw std::runtime_error("popen failed");
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int rc = ::pclose(p);
  if (status != nullptr) *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace trading_heal::test
