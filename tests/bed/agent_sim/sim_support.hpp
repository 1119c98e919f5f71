// Helpers of the agent simulator: configuration, the control-file format, Python-style logging,
// the heartbeat file. Header-only: the simulator is one translation unit (main.cpp).
#pragma once

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace trading_heal::agent_sim {

// The simulator's settings, from its argument and environment.
struct Config {
  std::string instance, symbol, profile;
  std::string db_url;
  std::chrono::milliseconds interval{5000};
  double bootstrap_seconds = 2.0;
  std::string heartbeat_path, control_dir;
};

// What the control file asks for: `MODE [ARG] [sticky]`; absent or empty means `ok`.
struct Fault {
  std::string mode = "ok";
  long arg = 0;
  bool sticky = false;
};

inline void log(const char* level, const std::string& msg) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
  std::fprintf(stderr, "%s,%03lld | %s | %s\n", stamp, static_cast<long long>(ms), level,
               msg.c_str());
  std::fflush(stderr);
}

inline void raw(const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); }

inline bool valid_instance(const std::string& s) {  // ^[A-Za-z0-9]+(_[A-Za-z0-9]+)*$
  if (s.empty() || s.front() == '_' || s.back() == '_') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (std::isalnum(c) == 0 && !(c == '_' && s[i - 1] != '_')) return false;
  }
  return true;
}

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) out.push_back(part);
  return out;
}

inline std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline Fault parse_fault(const std::string& text) {
  Fault f;
  std::istringstream in(text);
  std::string word;
  bool first = true;
  while (in >> word) {
    if (word == "sticky") {
      f.sticky = true;
    } else if (first) {
      f.mode = word;
    } else {
      f.arg = std::strtol(word.c_str(), nullptr, 10);
    }
    first = false;
  }
  return f;
}

inline std::optional<double> env_seconds(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const double d = std::strtod(v, &end);
  if (*end != '\0' || d < 0 || d > 86400) {
    log("ERROR", std::string("❌ Invalid ") + name + "=" + v + " (want seconds >= 0)");
    return std::nullopt;
  }
  return d;
}

inline std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : fallback;
}

inline std::optional<Config> load_config(const std::string& instance) {
  Config c;
  c.instance = instance;
  const auto parts = split(instance, '_');
  c.symbol = parts[0] + (parts.size() > 1 ? "-" + parts[1] : "");
  c.profile = "default";
  if (parts.size() > 2) {
    c.profile = parts[2];
    for (size_t i = 3; i < parts.size(); ++i) c.profile += "_" + parts[i];
  }
  c.db_url = env_or("AGENT_DATABASE_URL", env_or("DATABASE_URL", ""));
  if (c.db_url.empty()) {
    log("ERROR", "❌ No database configured: set AGENT_DATABASE_URL or DATABASE_URL");
    return std::nullopt;
  }
  const auto interval = env_seconds("DECISION_INTERVAL", 5.0);
  const auto boot = env_seconds("SIM_BOOTSTRAP_SECONDS", 2.0);
  if (!interval || !boot || *interval < 0.01) return std::nullopt;
  c.interval = std::chrono::milliseconds(static_cast<long long>(*interval * 1000));
  c.bootstrap_seconds = *boot;
  std::string safe = c.symbol;
  for (char& ch : safe) ch = (ch == '-' || ch == '.') ? '_' : static_cast<char>(std::toupper(ch));
  c.heartbeat_path = env_or("SIM_HEARTBEAT_DIR", "/tmp") + "/crypto_agent_" + safe + "_heartbeat";
  c.control_dir = env_or("SIM_CONTROL_DIR", "/tmp");
  return c;
}

inline double epoch_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

inline std::string money(double v) {  // $64,733.10 like the real agent's log
  char buf[64];
  std::snprintf(buf, sizeof buf, v >= 100 ? "%.2f" : "%.4f", v);
  const std::string s(buf);
  const size_t int_digits = s.find('.');
  std::string out = "$";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && i < int_digits && (int_digits - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

inline std::string fmt(const char* format, double a, double b = 0, double c = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, format, a, b, c);
  return buf;
}

// Writes the heartbeat like the agent: `time.time()` as text, no newline, atomically.
inline void write_heartbeat(const std::string& path) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << fmt("%.6f", epoch_now());
    if (!out) {
      log("WARNING", "⚠️ Could not write heartbeat " + tmp);
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) log("WARNING", "⚠️ Could not write " + path);
}

// The libpq message of a refused connection, worded as the agents' older libpq prints it.
inline std::string db_error(const std::string& what) {
  if (what.find("Connection refused") != std::string::npos) {
    return "could not connect to server: Connection refused";
  }
  return what.substr(0, what.find('\n'));
}

}  // namespace trading_heal::agent_sim
