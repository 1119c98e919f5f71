// The whole of trading-heal on the testbed, for the end-to-end tests: the four daemons deployed
// as user units by deploy/deploy.sh --user (the project's own hardened unit files, as an operator
// without root would install them), and what the tests look at: the exporter's API and metrics,
// the audit file, the tap, the units, trading-heal-ctl.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace trading_heal::test {

inline constexpr int kMetricsPort = 29120;
inline constexpr int kApiPort = 29121;
inline constexpr int kPromPort = 29190;

// BTC_USDT -> BTC-USDT (the `symbol` label and audit field).
std::string symbol_of(const std::string& instance);
double now_epoch();
// "2026-11-28T10:00:00.123Z" -> epoch seconds (nullopt when malformed).
std::optional<double> parse_ts(const std::string& iso);

// GET on 127.0.0.1:port; nullopt when the connection fails. `status` receives the HTTP status.
// `token`: sent as a bearer token when not empty.
std::optional<std::string> http_get(int port, const std::string& path, int* status = nullptr,
                                    const std::string& token = {});

// A sample of the exposition: the value of the series `name` whose labels include all of
// `labels` (the first match), nullopt when absent.
std::optional<double> sample(const std::string& exposition, const std::string& name,
                             const std::map<std::string, std::string>& labels = {});

// The sum of every series of `name` (e.g. a counter over all its label values).
double sample_sum(const std::string& exposition, const std::string& name);

// Null-tolerant field access (the API answers null for what it does not know yet).
std::string str(const nlohmann::json& j, const std::string& key);
long long integer(const nlohmann::json& j, const std::string& key, long long fallback = -1);

class System {
 public:
  System() = default;
  System(const System&) = delete;
  System& operator=(const System&) = delete;
  ~System();

  // Deploys the four daemons as instance `name`: the e2e settings (1 s interval, stall after
  // 5 s, the bed's database, heartbeats and fake Ollama, ports 29120/29121) overridden by
  // `settings` (an empty value unsets a setting: the default applies); waits until GET /health
  // answers ok. Returns false (with a test failure) if not.
  bool deploy(const std::string& name, const std::map<std::string, std::string>& settings = {});
  // deploy.sh --uninstall --purge (idempotent).
  void uninstall();

  const std::string& name() const { return name_; }
  std::string unit(const std::string& component) const;  // trading-heal-<c>@<name>.service
  const std::string& runtime_dir() const { return runtime_dir_; }
  std::string audit_path() const { return data_dir_ + "/trading_heal_audit.jsonl"; }
  const std::map<std::string, std::string>& settings() const { return settings_; }

  std::string metrics() const;
  std::optional<double> metric(const std::string& name,
                               const std::map<std::string, std::string>& labels = {}) const;
  std::optional<nlohmann::json> api(const std::string& path) const;
  // GET /audit?<query> (the query may be empty): the events, oldest first ([] on error).
  nlohmann::json audit(const std::string& query) const;
  // Audit events of `instance` with `action` since the epoch `since`.
  std::vector<nlohmann::json> events(const std::string& instance, const std::string& action,
                                     double since) const;
  // Every line of the audit file, parsed (unparsable lines become {"unparsable": line}).
  std::vector<nlohmann::json> audit_lines() const;
  // The /status entry of `instance` (null when absent or the API does not answer).
  nlohmann::json status_of(const std::string& instance) const;
  // trading-heal-ctl with this deployment's settings; returns the exit status.
  int ctl(const std::string& args, std::string* out = nullptr) const;

 private:
  std::string deploy_cmd() const;
  std::string name_;
  std::string work_;
  std::string runtime_dir_;
  std::string data_dir_;
  std::map<std::string, std::string> settings_;
  std::string token_;  // the API token deploy.sh made for the deployment
  bool deployed_ = false;
};

// The simulated agents and their units (through the bed's environment).
long unit_main_pid(const std::string& unit);
std::string unit_property(const std::string& unit, const std::string& property);
std::string agent_unit(const std::string& instance);  // crypto-agent@X.service
void fault(const std::string& instance, const std::string& mode, bool sticky = false);
// POST to the fake Ollama's control API (/_fake/mode, /_fake/reset).
bool fake_ollama(const std::string& path, const std::string& body);

// Rows for a Markdown report written next to the build's bin directory at the end of a program.
class Report {
 public:
  static void add(const std::string& file, const std::string& row);
  // Writes every file: `header` + the rows added for it.
  static void write(const std::string& file, const std::string& header);
};

}  // namespace trading_heal::test
