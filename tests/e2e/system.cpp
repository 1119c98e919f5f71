#include "system.hpp"
#include "system_test.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>

#include "support/bed.hpp"
#include "support/wait.hpp"

namespace trading_heal::test {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string quote(const std::string& s) {
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

std::string url_encode(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

std::string symbol_of(const std::string& instance) {
  std::string s = instance;
  if (auto p = s.find('_'); p != std::string::npos) s[p] = '-';
  return s;
}

double now_epoch() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::optional<double> parse_ts(const std::string& iso) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(iso.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(::timegm(&tm)) + ms / 1000.0;
}

std::optional<std::string> http_get(int port, const std::string& path, int* status,
                                    const std::string& token) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(2);
  cli.set_read_timeout(10);
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  auto res = cli.Get(path.c_str(), headers);
  if (!res) return std::nullopt;
  if (status != nullptr) *status = res->status;
  return res->body;
}

std::optional<double> sample(const std::string& exposition, const std::string& name,
                             const std::map<std::string, std::string>& labels) {
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.compare(0, name.size(), name) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') continue;
    bool all = true;
    for (const auto& [k, v] : labels) {
      const std::string want = k + "=\"" + v + "\"";
      const auto p = line.find(want);
      if (p == std::string::npos || (line[p - 1] != '{' && line[p - 1] != ',')) {
        all = false;
        break;
      }
    }
    if (!all) continue;
    const auto sp = line.rfind(' ');
    try {
      return std::stod(line.substr(sp + 1));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

double sample_sum(const std::string& exposition, const std::string& name) {
  std::istringstream in(exposition);
  std::string line;
  double sum = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.compare(0, name.size(), name) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') continue;
    try {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    } catch (const std::exception&) {
    }
  }
  return sum;
}

std::string str(const json& j, const std::string& key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

long long integer(const json& j, const std::string& key, long long fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<long long>() : fallback;
}

// ---- System ----------------------------------------------------------------------------------

System::~System() { uninstall(); }

std::string System::unit(const std::string& component) const {
  return "trading-heal-" + component + "@" + name_ + ".service";
}

std::string System::deploy_cmd() const {
  const std::string bin = Bed::bin("");
  const std::string build = std::filesystem::path(bin).parent_path().parent_path().string();
  return quote(Bed::source_dir() + "/deploy/deploy.sh") + " --user --instance " + quote(name_) +
         " --build-dir " + quote(build) + " --prefix " + quote(work_ + "/prefix");
}

bool System::deploy(const std::string& name, const std::map<std::string, std::string>& settings) {
  name_ = name;
  // Short paths: ipc socket paths are limited to 107 bytes.
  work_ = "/tmp/th-e2e-" + name;
  std::filesystem::remove_all(work_);
  std::filesystem::create_directories(work_);
  runtime_dir_ = work_ + "/run";
  data_dir_ = work_ + "/data";
  settings_ = {
      {"TRADING_HEAL_AGENTS", Bed::get("TRADING_HEAL_AGENTS")},
      {"DATABASE_URL", Bed::get("DATABASE_URL")},
      {"TRADING_HEAL_HEARTBEAT_DIR", Bed::get("TRADING_HEAL_HEARTBEAT_DIR")},
      {"OLLAMA_HOST", Bed::get("OLLAMA_HOST")},
      {"OLLAMA_TIMEOUT", "4"},
      {"TRADING_HEAL_RUNTIME_DIR", runtime_dir_},
      {"TRADING_HEAL_DATA_DIR", data_dir_},
      {"TRADING_HEAL_METRICS_LISTEN", "127.0.0.1:" + std::to_string(kMetricsPort)},
      {"TRADING_HEAL_API_LISTEN", "127.0.0.1:" + std::to_string(kApiPort)},
      {"TRADING_HEAL_INTERVAL", "1"},
      {"TRADING_HEAL_STALL_THRESHOLD", "5"},
      {"TRADING_HEAL_STARTUP_GRACE", "3"},
      {"TRADING_HEAL_COOLDOWN", "2"},
      {"TRADING_HEAL_DIAGNOSIS_WAIT", "6"},
      {"TRADING_HEAL_RESTART_TIMEOUT", "15"},
      // CI runs sanitizer builds: LeakSanitizer cannot stop threads inside the units' seccomp
      // sandbox (no ptrace) and would fail every unit at exit. Ignored by normal builds.
      {"ASAN_OPTIONS", "detect_leaks=0"},
  };
  for (const auto& [k, v] : settings) {
    if (v.empty()) {
      settings_.erase(k);  // unset: the daemons' default applies
    } else {
      settings_[k] = v;
    }
  }
  std::string cmd = deploy_cmd();
  for (const auto& [k, v] : settings_) cmd += " --env " + quote(k + "=" + v);
  const std::string log = work_ + "/deploy.log";
  deployed_ = true;  // from here on, uninstall() cleans up whatever part of it happened
  if (Bed::sh(cmd + " >" + quote(log) + " 2>&1") != 0) {
    ADD_FAILURE() << "deploy.sh failed:\n" << Bed::sh_out("cat " + quote(log));
    return false;
  }
  // The API token deploy.sh made (the API wants it for /status and /audit).
  {
    std::ifstream in(Bed::get("XDG_CONFIG_HOME") + "/trading-heal/" + name_ + ".token");
    std::getline(in, token_);
  }
  const bool ok = wait_until(
      [&] {
        int st = 0;
        auto body = http_get(kApiPort, "/health", &st);
        return body && st == 200;
      },
      30s, 200ms);
  if (!ok) {
    ADD_FAILURE() << "GET /health did not answer 200 within 30 s of the deploy:\n"
                  << Bed::sh_out("journalctl --no-pager -n 40 --user-unit 'trading-heal-*@" +
                                 name_ +
                                 ".service' 2>&1; systemctl --user status 'trading-heal-*@" +
                                 name_ + ".service' 2>&1 | head -40");
  }
  return ok;
}

void System::uninstall() {
  if (!deployed_) return;
  deployed_ = false;
  if (Bed::sh(deploy_cmd() + " --uninstall --purge >" + quote(work_ + "/uninstall.log") +
              " 2>&1") != 0) {
    ADD_FAILURE() << "deploy.sh --uninstall failed:\n"
                  << Bed::sh_out("cat " + quote(work_ + "/uninstall.log"));
  }
  std::error_code ec;
  std::filesystem::remove_all(work_, ec);
}

std::string System::metrics() const { return http_get(kMetricsPort, "/metrics").value_or(""); }

std::optional<double> System::metric(const std::string& name,
                                     const std::map<std::string, std::string>& labels) const {
  return sample(metrics(), name, labels);
}

std::optional<json> System::api(const std::string& path) const {
  int st = 0;
  auto body = http_get(kApiPort, path, &st, token_);
  if (!body || st != 200) return std::nullopt;
  auto j = json::parse(*body, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

json System::audit(const std::string& query) const {
  auto j = api("/audit?limit=10000" + (query.empty() ? "" : "&" + query));
  return j && j->is_array() ? *j : json::array();
}

std::vector<json> System::events(const std::string& instance, const std::string& action,
                                 double since) const {
  std::vector<json> out;
  const std::string q = "symbol=" + url_encode(symbol_of(instance)) +
                        "&action=" + url_encode(action) +
                        "&since=" + std::to_string(static_cast<long long>(since));
  for (auto& e : audit(q)) {
    auto ts = parse_ts(e.value("ts", ""));
    if (ts && *ts >= since) out.push_back(e);
  }
  return out;
}

std::vector<json> System::audit_lines() const {
  std::vector<json> out;
  std::ifstream in(audit_path());
  std::string line;
  while (std::getline(in, line)) {
    auto j = json::parse(line, nullptr, false);
    out.push_back(j.is_discarded() ? json{{"unparsable", line}} : j);
  }
  return out;
}

json System::status_of(const std::string& instance) const {
  auto s = api("/status");
  if (!s || !s->contains("agents")) return nullptr;
  for (const auto& a : (*s)["agents"]) {
    if (a.value("agent", "") == instance) return a;
  }
  return nullptr;
}

int System::ctl(const std::string& args, std::string* out) const {
  std::string cmd;
  for (const auto& [k, v] : settings_) cmd += k + "=" + quote(v) + " ";
  cmd += quote(Bed::bin("trading-heal-ctl")) + " " + args + " 2>&1";
  int st = 0;
  std::string o = Bed::sh_out(cmd, &st);
  if (out != nullptr) *out = o;
  return st;
}

// ---- agents ----------------------------------------------------------------------------------

std::string unit_property(const std::string& unit, const std::string& property) {
  return Bed::sh_out("systemctl --user show -p " + property + " --value " + quote(unit));
}

long unit_main_pid(const std::string& unit) {
  const std::string v = unit_property(unit, "MainPID");
  try {
    return v.empty() ? 0 : std::stol(v);
  } catch (const std::exception&) {
    return 0;
  }
}

std::string agent_unit(const std::string& instance) {
  return "crypto-agent@" + instance + ".service";
}

void fault(const std::string& instance, const std::string& mode, bool sticky) {
  const int rc = Bed::sh(quote(Bed::source_dir() + "/tests/bed/bed.sh") + " fault " +
                         quote(instance) + " " + mode + (sticky ? " sticky" : "") + " 2>/dev/null");
  ASSERT_EQ(rc, 0) << "bed.sh fault " << instance << " " << mode;
}

bool fake_ollama(const std::string& path, const std::string& body) {
  return Bed::sh("curl -fsS --max-time 5 -X POST -d " + quote(body) + " \"$OLLAMA_HOST\"" +
                 quote(path) + " >/dev/null") == 0;
}

// ---- report ----------------------------------------------------------------------------------

namespace {
std::mutex g_report_mu;
std::map<std::string, std::vector<std::string>>& rows() {
  static std::map<std::string, std::vector<std::string>> r;
  return r;
}
}  // namespace

void Report::add(const std::string& file, const std::string& row) {
  std::lock_guard lock(g_report_mu);
  rows()[file].push_back(row);
}

void Report::write(const std::string& file, const std::string& header) {
  std::lock_guard lock(g_report_mu);
  const auto dir = std::filesystem::path(Bed::bin("")).parent_path().parent_path();
  std::ofstream out(dir / file);
  out << header;
  for (const auto& r : rows()[file]) out << r << "\n";
}

}  // namespace trading_heal::test

// ---- the fixture -----------------------------------------------------------------------------

namespace trading_heal::test {

void SystemTest::SetUp() {
  // Every test after the program's first starts from a clean fleet too (bed_reset.cpp did the
  // first): faults cleared, drop-ins removed, PostgreSQL up, agents freshly started.
  static int n = 0;
  if (n++ > 0) {
    ASSERT_EQ(Bed::sh("'" + Bed::source_dir() + "/tests/bed/bed.sh' reset >/dev/null 2>&1"), 0);
  }
  ASSERT_TRUE(fake_ollama("/_fake/reset", "{}"));
  name_ = prefix_ + std::to_string(::getpid()) + "n" + std::to_string(n);
  since_ = now_epoch() - 1;
}

void SystemTest::TearDown() {
  if (HasFailure()) {
    std::cerr << "--- audit of " << name_ << "\n";
    for (const auto& e : sys_.audit_lines()) std::cerr << e.dump() << "\n";
    std::cerr << Bed::sh_out("journalctl --no-pager -n 80 -o short-precise --since @" +
                             std::to_string(static_cast<long long>(since_)) +
                             " --user-unit 'trading-heal-*@" + name_ + ".service' 2>&1")
              << "\n";
  }
  sys_.uninstall();
}

}  // namespace trading_heal::test
