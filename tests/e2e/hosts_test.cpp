// Many hosts on one machine: a centre and two agent hosts, each in its own network namespace,
// joined by veth pairs on a bridge of a namespace of its own (10.213.77.0/24; nothing routes out
// of it), plus a fourth namespace for a stranger. The centre runs the exporter (the hosts' state
// on TRADING_HEAL_STATE_ENDPOINT, their records on the events endpoint, its orders to them on the
// fleet endpoint, all tcp with CURVE and the allow-list hosts.d/{alpha,beta}.pub); each agent
// host runs a probe (its link to the centre) and an actuator (and alpha a diagnoser, with the rules
// only) for three of the testbed's agents, each host with its own systemd user manager: alpha's
// agents are the testbed's manager's, beta's run under a second user manager started for the
// suite in a cgroup of its own (start_beta_manager). PostgreSQL (by its unix socket) and the
// journal are the testbed's.
//
// Shown: stalls on both hosts healed and audited with the right host; agents failing on both
// hosts together healed as one fleet incident with one canary host (the other held, and
// restarting alone once the centre is gone and its order lapsed); a stranger's key and a
// plain-TCP client refused and counted; the centre stopped for 60 s while a host heals a stall,
// whose records arrive exactly once when it is back; a cut link seen by the centre within 10 s.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "support/bed.hpp"
#include "support/process.hpp"
#include "support/wait.hpp"
#include "system.hpp"
#include "trading_heal/common/curve.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/proto/codec.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;
namespace t = trading_heal::test;
using t::Bed;
using t::Child;
using t::wait_until;

constexpr const char* kNet = "10.213.77.";
const std::string kCentre = std::string(kNet) + "1";
constexpr int kStatePort = 29130;
constexpr int kEventsPort = 29131;
constexpr int kFleetPort = 29132;
constexpr int kAnalysisPort = 29133;
constexpr int kOllamaPort = 29434;  // the fake model, on the centre's own loopback
constexpr int kMetricsPort = 29220;
constexpr int kApiPort = 29221;

const std::vector<std::string> kAlpha = {"BTC_USDT", "ETH_USDT", "XRP_USDT"};
const std::vector<std::string> kBeta = {"SOL_USDT", "DOGE_USDT", "ADA_USDT"};

std::string ns(const std::string& name) { return "th-fleet-" + name; }

int sh(const std::string& cmd) { return Bed::sh(cmd + " >/dev/null 2>&1"); }

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// The namespaces and the bridge. False when the kernel refuses network namespaces.
bool make_network(std::string* why) {
  (void)sh("ip netns del " + ns("probe-ns"));
  if (sh("ip netns add " + ns("probe-ns")) != 0) {
    *why = "the kernel refuses network namespaces here (ip netns add failed)";
    return false;
  }
  (void)sh("ip netns del " + ns("probe-ns"));
  std::string script = "set -e; ip netns add " + ns("sw") + "; ip -n " + ns("sw") +
                       " link add br0 type bridge; ip -n " + ns("sw") + " link set br0 up; ";
  int octet = 1;
  for (const char* host : {"centre", "alpha", "beta", "rogue"}) {
    const std::string n = ns(host), in = std::string("thf-") + host[0] + "0",
                      out = std::string("thf-") + host[0] + "1";
    script += "ip netns add " + n + "; ip -n " + n + " link set lo up; ip link add " + in +
              " netns " + n + " type veth peer name " + out + " netns " + ns("sw") + "; ip -n " +
              n + " addr add " + kNet + std::to_string(octet++) + "/24 dev " + in + "; ip -n " + n +
              " link set " + in + " up; ip -n " + ns("sw") + " link set " + out +
              " master br0 up; ";
  }
  if (Bed::sh(script) != 0) {
    *why = "building the namespaces failed";
    return false;
  }
  return true;
}

void drop_network() {
  for (const char* host : {"centre", "alpha", "beta", "rogue", "sw"})
    (void)sh("ip netns del " + ns(host));
}

// A link between the bridge and a host: down (cut) or up.
void set_link(char host, bool up) {
  ASSERT_EQ(sh("ip -n " + ns("sw") + " link set thf-" + std::string(1, host) + "1 " +
               (up ? "up" : "down")),
            0);
}

// beta's own systemd user manager, beside the testbed's (alpha's): without systemd as PID 1 a
// user manager puts its units under the cgroup it was started in (less a trailing init.scope),
// in the legacy name=systemd hierarchy and in the unified one alike, so beta's starts in
// th-fleet-beta/init.scope of both and its agents' cgroups cannot meet the testbed's. beta's
// three agents move from the testbed's manager to it, and back at the end.
const char* const kBetaRuntime = "/run/th-fleet-beta";

std::string beta_units() {
  std::string units;
  for (const auto& a : kBeta) units += " crypto-agent@" + a + ".service";
  return units;
}
std::string as_beta(const std::string& cmd) {
  return std::string("XDG_RUNTIME_DIR=") + kBetaRuntime +
         " DBUS_SESSION_BUS_ADDRESS=unix:path=" + kBetaRuntime + "/bus " + cmd;
}
// The shell's $v1 and $v2: beta's cgroup in each hierarchy ($v1 empty without a legacy one). The
// unified hierarchy is reached through a mount of its own (the same hierarchy wherever else it
// is mounted, or when it is not), undone at the end.
std::string beta_cgroups(const fs::path& dir) {
  const std::string own = (dir / "cg2").string();
  return "v2root=" + own + "; mkdir -p $v2root; mountpoint -q $v2root || mount -t cgroup2 none " +
         "$v2root; v2=$v2root/th-fleet-beta; v1=; [[ -d /sys/fs/cgroup/systemd ]] && " +
         "v1=/sys/fs/cgroup/systemd/th-fleet-beta; ";
}

// Runs `script` by bash (Bed::sh's shell is sh) from a file, its output appended to `log`.
int run_bash(const fs::path& file, const std::string& script, const std::string& log) {
  std::ofstream(file) << script << "\n";
  return Bed::sh("bash " + file.string() + " >>" + log + " 2>&1");
}

bool start_beta_manager(const fs::path& dir, std::string* why) {
  const std::string cfg = (dir / "beta" / "config").string();
  const std::string log = (dir / "beta-systemd-user.log").string();
  const std::string script =
      "set -e; " + beta_cgroups(dir) +
      "mkdir -p $v2/init.scope; [[ -z $v1 ]] || mkdir -p $v1/init.scope; rm -rf " + kBetaRuntime +
      "; mkdir -m 700 " + kBetaRuntime + "; mkdir -p " + cfg +
      "/systemd/user; cp \"$XDG_CONFIG_HOME/systemd/user/crypto-agent@.service\" " + cfg +
      "/systemd/user/; systemctl --user stop" + beta_units() +
      "; (echo $BASHPID >$v2/init.scope/cgroup.procs; [[ -z $v1 ]] || echo $BASHPID "
      ">$v1/init.scope/cgroup.procs; exec env -i "
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=\"${HOME:-/root}\" "
      "LANG=C.UTF-8 XDG_RUNTIME_DIR=" +
      kBetaRuntime + " XDG_CONFIG_HOME=" + cfg +
      " SYSTEMD_LOG_TARGET=journal setsid /lib/systemd/systemd --user </dev/null >>" + log +
      " 2>&1) & echo $! >" + (dir / "beta-manager.pid").string() +
      "; for i in $(seq 300); do s=$(" + as_beta("systemctl --user is-system-running") +
      " 2>/dev/null) || true; [[ ($s == running || $s == degraded) && -S " + kBetaRuntime +
      "/bus ]] && break; sleep 0.1; done; " + as_beta("systemctl --user start") + beta_units();
  if (run_bash(dir / "beta-start.sh", script, log) != 0) {
    *why = "beta's own user manager did not start: " + Bed::sh_out("tail -5 " + log);
    return false;
  }
  return true;
}

void stop_beta_manager(const fs::path& dir) {
  const std::string pid = "$(cat " + (dir / "beta-manager.pid").string() + " 2>/dev/null)";
  (void)run_bash(dir / "beta-stop.sh",
                 as_beta("timeout 30 systemctl --user stop") + beta_units() + "; kill " + pid +
                     "; for i in $(seq 100); do kill -0 " + pid +
                     " 2>/dev/null || break; sleep 0.1; done; " + beta_cgroups(dir) +
                     "find $v2 $v1 -depth -type d -exec rmdir {} \\; ; ! mountpoint -q " +
                     (dir / "cg2").string() + " || umount " + (dir / "cg2").string() + "; rm -rf " +
                     kBetaRuntime + "; systemctl --user start" +
                     beta_units(),  // back to the testbed's manager
                 (dir / "beta-systemd-user.log").string());
}

class Hosts : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string why;
    if (!make_network(&why)) {
      skip_ = why;
      return;
    }
    dir_ = fs::path(::testing::TempDir()) /
           ("th-fleet-" + trading_heal::common::random_boot_id().substr(0, 8));
    fs::create_directories(dir_ / "keys");
    fs::create_directories(dir_ / "hosts.d");
    for (const char* k : {"centre", "alpha", "beta", "rogue", "gamma"}) {
      ASSERT_EQ(
          sh(Bed::bin("trading-heal-ctl") + " keygen " + k + " --dir " + (dir_ / "keys").string()),
          0)
          << k;
    }
    for (const char* h : {"alpha", "beta"}) {
      fs::copy_file(dir_ / "keys" / (std::string(h) + ".pub"),
                    dir_ / "hosts.d" / (std::string(h) + ".pub"));
    }
    start_centre();
    start_centre_model();
    if (!start_beta_manager(dir_, &broken_)) return;
    beta_manager_ = true;
    start_host("alpha", kAlpha, true);
    start_host("beta", kBeta, false);
  }

  static void TearDownTestSuite() {
    for (auto& [name, c] : daemons_) {
      c.signal(SIGTERM);
      if (!c.wait(10s)) {
        c.signal(SIGKILL);
        c.wait(5s);
      }
    }
    daemons_.clear();
    beta_manager_ = beta_manager_ || !broken_.empty();  // a half-started one too
    if (beta_manager_) stop_beta_manager(dir_);
    drop_network();
    std::error_code ignored;  // a mount left in it (cg2) is not removed, nor is it fatal
    if (!dir_.empty()) fs::remove_all(dir_, ignored);
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    if (!broken_.empty()) FAIL() << broken_;
  }

  static std::map<std::string, std::string> base_env(const std::string& name) {
    auto env = Bed::env();
    env["TRADING_HEAL_RUNTIME_DIR"] = (dir_ / name / "run").string();
    env["TRADING_HEAL_DATA_DIR"] = (dir_ / name / "data").string();
    env["TRADING_HEAL_INTERVAL"] = "1";
    env["TRADING_HEAL_LOG_LEVEL"] = "info";
    env.erase("OLLAMA_HOST");
    return env;
  }

  static void spawn(const std::string& key, const std::string& host, const std::string& bin,
                    const std::map<std::string, std::string>& env) {
    daemons_.insert_or_assign(
        key, Child::spawn({"/usr/sbin/ip", "netns", "exec", ns(host), Bed::bin(bin)}, env));
  }

  static std::map<std::string, std::string> centre_env() {
    auto env = base_env("centre");
    env["TRADING_HEAL_HOST"] = "centre";
    env["TRADING_HEAL_AGENTS"] = "";
    env["TRADING_HEAL_STATE_ENDPOINT"] = "tcp://" + kCentre + ":" + std::to_string(kStatePort);
    env["TRADING_HEAL_EVENTS_ENDPOINT"] = "tcp://" + kCentre + ":" + std::to_string(kEventsPort);
    env["TRADING_HEAL_FLEET_ENDPOINT"] = "tcp://" + kCentre + ":" + std::to_string(kFleetPort);
    env["TRADING_HEAL_ANALYSIS_ENDPOINT"] =
        "tcp://" + kCentre + ":" + std::to_string(kAnalysisPort);
    env["TRADING_HEAL_MODEL_ENDPOINT"] = centre_model_endpoint();
    // Failures on several hosts within 30 s are one fleet incident (3 agents, 2 hosts or more).
    env["TRADING_HEAL_GLOBAL_WINDOW"] = "30";
    // The suite restarts up to 9 agents within the hour: the fleet-wide breaker (its unit test
    // proves it) is kept out of the way.
    env["TRADING_HEAL_FLEET_MAX_RESTARTS"] = "50";
    env["TRADING_HEAL_CURVE_SECRET_KEY_FILE"] = (dir_ / "keys" / "centre.key").string();
    env["TRADING_HEAL_HOSTS_DIR"] = (dir_ / "hosts.d").string();
    env["TRADING_HEAL_METRICS_LISTEN"] = "127.0.0.1:" + std::to_string(kMetricsPort);
    env["TRADING_HEAL_API_LISTEN"] = "127.0.0.1:" + std::to_string(kApiPort);
    return env;
  }
  static void start_centre() {
    spawn("centre/exporter", "centre", "trading-heal-exporter", centre_env());
  }
  static std::string centre_model_endpoint() {
    return "ipc://" + (dir_ / "centre" / "run" / "diagnoser" / "model.sock").string();
  }
  // The model in the centre: a (fake) Ollama on the centre's loopback, asked by the centre's
  // diagnoser for the hosts (the exporter passes their requests on).
  static void start_centre_model() {
    daemons_.insert_or_assign("centre/ollama",
                              Child::spawn({"/usr/sbin/ip", "netns", "exec", ns("centre"),
                                            Bed::bin("trading-heal-fake-ollama"), "--listen",
                                            "127.0.0.1:" + std::to_string(kOllamaPort)},
                                           base_env("centre")));
    if (!wait_until([] { return !centre_get(kOllamaPort, "/api/version").empty(); }, 15s, 100ms)) {
      broken_ = "the fake Ollama did not start in the centre's namespace";
      return;
    }
    auto env = base_env("centre");
    env["TRADING_HEAL_HOST"] = "centre";
    env["TRADING_HEAL_MODEL_ENDPOINT"] = centre_model_endpoint();
    env["OLLAMA_HOST"] = "http://127.0.0.1:" + std::to_string(kOllamaPort);
    env["OLLAMA_ENABLED"] = "true";
    env["OLLAMA_TIMEOUT"] = "10";
    spawn("centre/diagnoser", "centre", "trading-heal-diagnoser", env);
  }

  // An agent host: the probe links it to the centre (keys, the state and events endpoints); the
  // actuator and the diagnoser only know the probe's relay.
  static void start_host(const std::string& host, const std::vector<std::string>& agents,
                         bool diagnoser) {
    auto env = base_env(host);
    if (host == "beta") {  // its own user manager and bus
      env["XDG_RUNTIME_DIR"] = kBetaRuntime;
      env["DBUS_SESSION_BUS_ADDRESS"] = std::string("unix:path=") + kBetaRuntime + "/bus";
    }
    env["TRADING_HEAL_HOST"] = host;
    env["TRADING_HEAL_AGENTS"] = join(agents);
    env["TRADING_HEAL_STALL_THRESHOLD"] = "5";
    env["TRADING_HEAL_DIAGNOSIS_WAIT"] = "3";
    env["TRADING_HEAL_RELAY_ENDPOINT"] =
        "ipc://" + (dir_ / host / "run" / "probe" / "relay.sock").string();
    // The diagnoser asks the centre's model through its probe.
    env["TRADING_HEAL_MODEL_RELAY_ENDPOINT"] =
        "ipc://" + (dir_ / host / "run" / "probe" / "model.sock").string();
    env["OLLAMA_ENABLED"] = "false";
    env["DATABASE_URL"] = socket_url(env);
    auto probe = env;
    probe["TRADING_HEAL_STATE_ENDPOINT"] = "tcp://" + kCentre + ":" + std::to_string(kStatePort);
    probe["TRADING_HEAL_EVENTS_ENDPOINT"] = "tcp://" + kCentre + ":" + std::to_string(kEventsPort);
    probe["TRADING_HEAL_FLEET_ENDPOINT"] = "tcp://" + kCentre + ":" + std::to_string(kFleetPort);
    probe["TRADING_HEAL_ANALYSIS_ENDPOINT"] =
        "tcp://" + kCentre + ":" + std::to_string(kAnalysisPort);
    probe["TRADING_HEAL_CURVE_SECRET_KEY_FILE"] = (dir_ / "keys" / (host + ".key")).string();
    probe["TRADING_HEAL_CURVE_SERVER_KEY_FILE"] = (dir_ / "keys" / "centre.pub").string();
    spawn(host + "/probe", host, "trading-heal-probe", probe);
    spawn(host + "/actuator", host, "trading-heal-actuator", env);
    auto diag = env;
    diag["OLLAMA_ENABLED"] = "true";  // the centre's model (this host has none of its own)
    if (diagnoser) spawn(host + "/diagnoser", host, "trading-heal-diagnoser", diag);
  }

  // The bed's database URL by PostgreSQL's unix socket: its 127.0.0.1 is another namespace's.
  static std::string socket_url(std::map<std::string, std::string>& env) {
    const std::string url = env["DATABASE_URL"];
    return url.substr(0, url.find('@') + 1) + "/postgres?host=" + env["PG_SOCKET_DIR"] +
           "&port=" + env["PGPORT"];
  }
  // The centre's count of refused peers (-1 before the exporter answers).
  static double refused() {
    const std::string m = metrics();
    const std::string series =
        R"(trading_selfheal_peers_refused_total{component="exporter",host="centre"} )";
    const auto at = m.find(series);
    return at == std::string::npos ? -1.0 : std::stod(m.substr(at + series.size()));
  }
  // GET on the centre's loopback (inside its namespace).
  static std::string centre_get(int port, const std::string& path) {
    return Bed::sh_out("ip netns exec " + ns("centre") +
                       " curl -fsS --max-time 3 http://127.0.0.1:" + std::to_string(port) + path +
                       " 2>/dev/null");
  }
  static std::string metrics() { return centre_get(kMetricsPort, "/metrics"); }
  static json status() {
    auto j = json::parse(centre_get(kApiPort, "/status"), nullptr, false);
    return j.is_discarded() ? json() : j;
  }
  static std::vector<json> audit_lines() {
    std::vector<json> out;
    std::ifstream in(dir_ / "centre" / "data" / "trading_heal_audit.jsonl");
    for (std::string l; std::getline(in, l);) {
      auto j = json::parse(l, nullptr, false);
      if (!j.is_discarded()) out.push_back(j);
    }
    return out;
  }
  // The audit lines of `action` from `host` (about `agent` when given) since `since`.
  static std::vector<json> records(const std::string& action, const std::string& host,
                                   const std::string& agent, double since) {
    std::vector<json> out;
    for (const auto& l : audit_lines()) {
      if (l.value("action", "") == action && (agent.empty() || l.value("agent", "") == agent) &&
          l.value("host", "") == host && t::parse_ts(l.value("ts", "")).value_or(0) >= since) {
        out.push_back(l);
      }
    }
    return out;
  }
  static std::vector<json> restarts(const std::string& host, const std::string& agent,
                                    double since) {
    return records("restart", host, agent, since);
  }
  static double ts_of(const json& l) { return t::parse_ts(l.value("ts", "")).value_or(0); }
  // The MainPID of `agent` under its host's user manager (0: none).
  static long main_pid(const std::string& host, const std::string& agent) {
    if (host != "beta") return t::unit_main_pid(t::agent_unit(agent));
    const std::string pid =
        Bed::sh_out(as_beta("systemctl --user show -p MainPID --value " + t::agent_unit(agent)));
    return pid.empty() ? 0 : std::stol(pid);
  }
  // alpha's and beta's six agents, each HEALTHY and where it belongs, past its bootstrap (one
  // that has not decided since it started stalls only after the startup grace); gamma,
  // admitted in its own test, is not counted.
  static bool all_healthy() {
    const json s = status();
    if (!s.is_object() || !s.contains("agents")) return false;
    std::size_t seen = 0;
    for (const auto& a : s["agents"]) {
      const std::string host = a.value("host", "");
      if (host == "gamma") continue;
      const auto& mine = host == "alpha" ? kAlpha : kBeta;
      if ((host != "alpha" && host != "beta") ||
          std::find(mine.begin(), mine.end(), a.value("agent", "")) == mine.end() ||
          !a["verdict"].is_string() || a["verdict"] != "HEALTHY" ||
          a.value("detail", "").find("bootstrapping") != std::string::npos) {
        return false;
      }
      ++seen;
    }
    return seen == 6;
  }

  static inline std::string skip_;
  static inline std::string broken_;  // the setup failed: every test fails, saying why
  static inline bool beta_manager_ = false;
  static inline fs::path dir_;
  static inline std::map<std::string, Child> daemons_;
};

TEST_F(Hosts, StallsOnBothHostsAreHealedAndAuditedWithTheirHost) {
  ASSERT_TRUE(wait_until(all_healthy, 60s, 500ms)) << status().dump();
  const double since = t::now_epoch();
  t::fault("ETH_USDT", "stall");
  t::fault("SOL_USDT", "stall");
  ASSERT_TRUE(wait_until(
      [&] {
        return !restarts("alpha", "ETH_USDT", since).empty() &&
               !restarts("beta", "SOL_USDT", since).empty();
      },
      90s, 500ms))
      << metrics();
  t::fault("ETH_USDT", "ok");
  t::fault("SOL_USDT", "ok");
  EXPECT_TRUE(restarts("beta", "ETH_USDT", since).empty()) << "only alpha watches ETH_USDT";
  // SOL_USDT is beta's own manager's unit, in its cgroup: restarted there, not in the testbed's.
  const std::string pid = Bed::sh_out(
      as_beta("systemctl --user show -p MainPID --value crypto-agent@SOL_USDT.service"));
  ASSERT_NE(pid, "0");
  EXPECT_NE(
      Bed::sh_out("grep name=systemd /proc/" + pid + "/cgroup").find("/th-fleet-beta/app.slice/"),
      std::string::npos);
  EXPECT_EQ(Bed::sh_out("systemctl --user is-active crypto-agent@SOL_USDT.service"), "inactive")
      << "the testbed's manager runs it too";
  EXPECT_TRUE(restarts("alpha", "SOL_USDT", since).empty());
  ASSERT_TRUE(wait_until(
      [] {
        const std::string m = metrics();
        return m.find(R"(trading_agent_restart_total{host="alpha",symbol="ETH-USDT"} 1)") !=
                   std::string::npos &&
               m.find(R"(trading_agent_restart_total{host="beta",symbol="SOL-USDT"} 1)") !=
                   std::string::npos;
      },
      10s, 250ms))
      << metrics();
  const std::string m = metrics();
  EXPECT_NE(m.find(R"(trading_selfheal_host_up{host="alpha"} 1)"), std::string::npos);
  EXPECT_NE(m.find(R"(trading_selfheal_host_up{host="beta"} 1)"), std::string::npos);
  EXPECT_EQ(m.find(R"(trading_agent_up{host="centre")"), std::string::npos)
      << "the centre has none";
  ASSERT_TRUE(wait_until(all_healthy, 60s, 500ms)) << status().dump();
}

// Agents failing on both hosts together are one fleet incident: the centre names one canary host,
// which restarts; the other holds (its actuator says so) and restarts only once the canary host's
// agent recovered after its restart; the incident closes when nothing fails.
// A host's diagnosis asks the centre's model: the prompt is built from the host's own journal and
// redacted there (the leaked secrets never reach the centre), the centre's diagnoser asks its
// model, and the answer comes back to alpha, which validates it: a diagnosis from the model,
// audited with alpha's host. Asked by an operator on alpha (`ctl diagnose`), so that no restart
// (and its cooldown) is left to the tests after it.
TEST_F(Hosts, AHostsDiagnosisAsksTheCentresModelWithItsLinesRedacted) {
  ASSERT_TRUE(wait_until(all_healthy, 60s, 500ms)) << status().dump();
  ASSERT_EQ(sh("ip netns exec " + ns("centre") + " curl -fsS -X POST -d {} http://127.0.0.1:" +
               std::to_string(kOllamaPort) + "/_fake/reset"),
            0);
  const double since = t::now_epoch();
  // Secrets in XRP_USDT's last lines. The journal is persistent: only lines written after the
  // fault count.
  const std::string journal_since = "@" + std::to_string(static_cast<long>(since));
  t::fault("XRP_USDT", "leak-secrets");
  ASSERT_TRUE(wait_until(
      [&] {
        return Bed::sh("journalctl -q --no-pager --since '" + journal_since +
                       "' SYSLOG_IDENTIFIER=crypto-agent-XRP_USDT | grep -qF 'Telegram notify "
                       "failed'") == 0;
      },
      30s, 250ms));
  const std::string ctl = "TRADING_HEAL_RUNTIME_DIR=" + (dir_ / "alpha" / "run").string() +
                          " TRADING_HEAL_AGENTS=" + join(kAlpha) + " ip netns exec " + ns("alpha") +
                          " " + Bed::bin("trading-heal-ctl");
  ASSERT_EQ(sh(ctl + " diagnose XRP_USDT --no-wait"), 0);
  ASSERT_TRUE(wait_until([&] { return !records("diagnosis", "alpha", "XRP_USDT", since).empty(); },
                         30s, 250ms))
      << metrics();
  t::fault("XRP_USDT", "ok");
  const json d = records("diagnosis", "alpha", "XRP_USDT", since).front();
  EXPECT_EQ(d.value("field_source", ""), "llm") << d.dump();
  EXPECT_EQ(d.value("model", ""), "qwen2.5-coder:7b") << "the centre's model answered";
  EXPECT_TRUE(records("ollama_error", "alpha", "XRP_USDT", since).empty());
  const std::string sent = centre_get(kOllamaPort, "/_fake/requests");
  EXPECT_NE(sent.find("Telegram notify failed"), std::string::npos) << "alpha's lines not sent";
  EXPECT_NE(sent.find("XRP"), std::string::npos);
  EXPECT_NE(sent.find("[REDACTED]"), std::string::npos);
  for (const char* secret :
       {"S3cretPassw0rd", "64f1c0ffee5eed00ba5eba11", "9b2e7d4c-5a1f-4e3b-8c6d-0f1a2b3c4d5e",
        "Tr4d3rPassphr4se", "eyJhbGciOiJIUzI1NiJ9", "AAHfakeTelegramTokenForTests_012345"}) {
    EXPECT_EQ(sent.find(secret), std::string::npos) << secret << " left alpha";
  }
}

TEST_F(Hosts, AFleetIncidentHasOneCanaryHostWhileTheOtherHolds) {
  ASSERT_TRUE(wait_until(all_healthy, 60s, 500ms)) << status().dump();
  const double since = t::now_epoch();
  // Agents no other test restarts (a restart within the cooldown would wait for it).
  const std::map<std::string, std::vector<std::string>> stalled = {
      {"alpha", {"BTC_USDT"}}, {"beta", {"DOGE_USDT", "ADA_USDT"}}};
  for (const auto& [host, agents] : stalled) {
    for (const auto& a : agents) t::fault(a, "stall");
  }
  const auto all_recovered = [&] {
    for (const auto& [host, agents] : stalled) {
      for (const auto& a : agents) {
        if (records("recovered", host, a, since).empty()) return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(wait_until(all_recovered, 120s, 500ms)) << metrics().substr(0, 2000) << "\n"
                                                      << status().dump();
  const auto opened = [&] {
    for (const auto& l : records("fleet_incident", "centre", "", since)) {
      if (l.value("stage", "") == "canary_testing") return l;
    }
    return json();
  }();
  ASSERT_TRUE(opened.is_object()) << "no fleet incident was opened";
  const std::string canary = opened.value("canary_host", "");
  ASSERT_TRUE(canary == "alpha" || canary == "beta") << opened.dump();
  const std::string other = canary == "alpha" ? "beta" : "alpha";
  std::cerr << "fleet incident " << opened.value("incident", "") << ": canary host " << canary
            << ", " << other << " held\n";
  // The canary host's first recovery after a restart, then the other host's restarts.
  double canary_recovered = 0;
  for (const auto& a : stalled.at(canary)) {
    for (const auto& r : records("recovered", canary, a, since)) {
      if (canary_recovered == 0 || ts_of(r) < canary_recovered) canary_recovered = ts_of(r);
    }
  }
  for (const auto& a : stalled.at(other)) {
    const auto rs = restarts(other, a, since);
    ASSERT_FALSE(rs.empty()) << other << " did not restart " << a;
    EXPECT_GE(ts_of(rs.front()), canary_recovered)
        << other << " restarted " << a << " before the canary host recovered: " << rs.front();
  }
  const auto holds = records("fleet_hold", other, "", since);
  ASSERT_FALSE(holds.empty()) << other << " never said it held for the centre";
  EXPECT_EQ(holds.front().value("state", ""), "holding") << holds.front();
  EXPECT_EQ(holds.front().value("canary_host", ""), canary) << holds.front();
  EXPECT_TRUE(records("fleet_hold", canary, "", since).empty()) << "the canary host never holds";
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& l : records("fleet_incident", "centre", "", since)) {
          if (l.value("stage", "") == "closed") return true;
        }
        return false;
      },
      60s, 500ms))
      << "the fleet incident did not close; /status: " << status().dump();
  bool released = false;
  for (const auto& l : records("fleet_incident", "centre", "", since)) {
    released = released || l.value("stage", "") == "releasing";
  }
  EXPECT_TRUE(released);
  EXPECT_EQ(records("fleet_hold", other, "", since).back().value("state", ""), "lifted");
  ASSERT_TRUE(wait_until(all_healthy, 60s, 500ms)) << status().dump();
  EXPECT_TRUE(status()["fleet"].is_null()) << status()["fleet"].dump();
  // The centre's own records (and every host's) came without a skipped sequence number.
  const std::string m = metrics();
  const auto gap = m.find("\ntrading_selfheal_events_gap_total");
  ASSERT_NE(gap, std::string::npos) << m.substr(0, 2000);
  EXPECT_EQ(m.substr(m.find(' ', gap) + 1, 2), "0\n") << m.substr(gap, 80);
}

// Speaks from the stranger's namespace (this thread only): a client with a key not in the
// allow-list, and a plain-TCP (NULL mechanism) client, each sending a health report.
void speak_as_stranger(const std::string& key_dir, std::string* error) {
  const int fd = ::open(("/run/netns/" + ns("rogue")).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
    *error = "setns into the stranger's namespace failed";
    return;
  }
  ::close(fd);
  namespace proto = trading_heal::proto;
  proto::HealthReport r;
  r.agent = "EVIL_USDT";
  r.symbol = "EVIL-USDT";
  r.verdict = proto::Verdict::kHealthy;
  const std::string bytes = proto::encode(proto::make_message("probe", "b", 1, 1, r));
  zmq::context_t ctx;  // its I/O thread is made here: in this namespace
  const auto keys = trading_heal::common::read_secret_key_file(key_dir + "/rogue.key");
  const auto server = trading_heal::common::read_public_key_file(key_dir + "/centre.pub");
  if (!keys || !server) {
    *error = "keys unreadable";
    return;
  }
  std::vector<zmq::socket_t> socks;
  for (bool curve : {true, false}) {
    for (int port : {kStatePort, kEventsPort}) {
      zmq::socket_t s(ctx, port == kStatePort ? zmq::socket_type::pub : zmq::socket_type::dealer);
      s.set(zmq::sockopt::linger, 0);
      if (curve) {
        s.set(zmq::sockopt::curve_serverkey, *server);
        s.set(zmq::sockopt::curve_publickey, keys->public_z85);
        s.set(zmq::sockopt::curve_secretkey, keys->secret_z85);
      }
      s.connect("tcp://" + kCentre + ":" + std::to_string(port));
      socks.push_back(std::move(s));
    }
  }
  const auto until = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < until) {
    for (auto& s : socks) (void)s.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    std::this_thread::sleep_for(100ms);  // a sender's pace, not a wait for a condition
  }
}

TEST_F(Hosts, AStrangersKeyAndAPlainTcpClientAreRefusedAndCounted) {
  ASSERT_TRUE(wait_until([&] { return refused() >= 0; }, 20s, 250ms)) << metrics();
  const double before = refused();
  std::string error;
  std::thread stranger(speak_as_stranger, (dir_ / "keys").string(), &error);
  stranger.join();
  ASSERT_TRUE(error.empty()) << error;
  // Two strangers' keys (ZAP refusals) and two plain clients (failed handshakes), at least.
  ASSERT_TRUE(wait_until([&] { return refused() >= before + 4; }, 10s, 250ms))
      << "the stranger's key and the plain client at both endpoints: refused " << refused()
      << " (before " << before << ")";
  const json s = status();
  for (const auto& a : s["agents"]) EXPECT_NE(a.value("agent", ""), "EVIL_USDT") << a.dump();
  EXPECT_EQ(metrics().find("EVIL"), std::string::npos);
  for (const auto& l : audit_lines()) EXPECT_NE(l.value("agent", ""), "EVIL_USDT");
}

TEST_F(Hosts, TheCentreAwayForAMinuteMissesNothingAndGetsEachRecordOnce) {
  ASSERT_TRUE(wait_until(all_healthy, 60s, 500ms)) << status().dump();
  const auto stopped_at = std::chrono::steady_clock::now();
  auto& centre = daemons_.at("centre/exporter");
  centre.signal(SIGTERM);
  ASSERT_TRUE(centre.wait(10s));
  const double since = t::now_epoch();
  const long before = t::unit_main_pid(t::agent_unit("XRP_USDT"));
  t::fault("XRP_USDT", "stall");
  // The host heals it alone: the unit gets a new main process.
  ASSERT_TRUE(wait_until(
      [&] {
        const long pid = t::unit_main_pid(t::agent_unit("XRP_USDT"));
        return pid > 0 && pid != before;
      },
      60s, 250ms))
      << "alpha did not restart XRP_USDT without its centre";
  const double healed_after =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count();
  t::fault("XRP_USDT", "ok");
  std::cerr << "XRP_USDT restarted by alpha " << healed_after << " s after the centre stopped\n";
  EXPECT_TRUE(restarts("alpha", "XRP_USDT", since).empty()) << "the centre was away";
  std::this_thread::sleep_until(stopped_at + 60s);  // the scenario: the centre away for 60 s
  start_centre();
  ASSERT_TRUE(wait_until([&] { return !restarts("alpha", "XRP_USDT", since).empty(); }, 30s, 250ms))
      << "the record did not arrive after the centre came back";
  // Exactly once: every (source, boot, seq) once, and one restart of XRP_USDT.
  ASSERT_TRUE(wait_until(all_healthy, 60s, 500ms)) << status().dump();
  std::set<std::string> ids;
  std::size_t dups = 0;
  for (const auto& l : audit_lines()) {
    const std::string id = l.value("host", "") + "/" + l.value("source", "") + "/" +
                           l.value("boot_id", "") + "/" + std::to_string(l.value("seq", 0));
    if (!ids.insert(id).second) ++dups;
  }
  EXPECT_EQ(dups, 0u);
  EXPECT_EQ(restarts("alpha", "XRP_USDT", since).size(), 1u);
  // Its diagnosis could not reach the centre's model: answered `unreachable` at once by alpha's
  // probe, the rules decided.
  const auto errors = records("ollama_error", "alpha", "XRP_USDT", since);
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors.front().value("reason", ""), "unreachable") << errors.front().dump();
  const auto diagnoses = records("diagnosis", "alpha", "XRP_USDT", since);
  ASSERT_FALSE(diagnoses.empty());
  EXPECT_EQ(diagnoses.front().value("field_source", ""), "rules");
  // In order per sender: the host's records' seqs only grow in the file.
  std::map<std::string, std::uint64_t> last;
  for (const auto& l : audit_lines()) {
    const std::string sender =
        l.value("host", "") + "/" + l.value("source", "") + "/" + l.value("boot_id", "");
    const std::uint64_t seq = l.value("seq", 0ULL);
    EXPECT_GT(seq, last[sender]) << l.dump();
    last[sender] = seq;
  }
}

// The centre gone while it holds a host: the order lapses 10 s after it was last heard, and the
// held host restarts its agents alone (its `fleet_hold` `lapsed` reaches the centre when it is
// back).
TEST_F(Hosts, AHoldLapsesWhenTheCentreIsGone) {
  ASSERT_TRUE(wait_until(all_healthy, 60s, 500ms)) << status().dump();
  const double since = t::now_epoch();
  const std::map<std::string, std::vector<std::string>> stalled = {
      {"alpha", {"BTC_USDT"}}, {"beta", {"DOGE_USDT", "ADA_USDT"}}};
  std::map<std::string, long> before;
  for (const auto& [host, agents] : stalled) {
    for (const auto& a : agents) before[a] = main_pid(host, a);
  }
  for (const auto& [host, agents] : stalled) {
    for (const auto& a : agents) t::fault(a, "stall");
  }
  std::string held;
  ASSERT_TRUE(wait_until(
      [&] {
        for (const char* h : {"alpha", "beta"}) {
          if (!records("fleet_hold", h, "", since).empty()) held = h;
        }
        return !held.empty();
      },
      60s, 100ms))
      << "no host held";
  auto& centre = daemons_.at("centre/exporter");
  centre.signal(SIGTERM);
  ASSERT_TRUE(centre.wait(10s));
  const auto gone = std::chrono::steady_clock::now();
  const auto restarted = [&] {
    for (const auto& a : stalled.at(held)) {
      const long pid = main_pid(held, a);
      if (pid <= 0 || pid == before[a]) return false;
    }
    return true;
  };
  ASSERT_TRUE(wait_until(restarted, 40s, 100ms)) << held << " never restarted without its centre";
  const double after =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - gone).count();
  std::cerr << held << " held, the centre stopped: restarted alone " << after << " s later\n";
  EXPECT_GT(after, 6.0) << "held until the order lapsed (10 s after the centre's last repeat)";
  start_centre();
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& l : records("fleet_hold", held, "", since)) {
          if (l.value("state", "") == "lapsed") return true;
        }
        return false;
      },
      30s, 250ms))
      << held << "'s lapse did not reach the centre";
  ASSERT_TRUE(wait_until(all_healthy, 60s, 500ms)) << status().dump();
}

// A host whose key the centre does not know yet is refused; once its .pub is in hosts.d and the
// centre read it again (SIGHUP), the host is heard without being restarted (its probe connects
// again by itself after a refusal).
TEST_F(Hosts, AHostAdmittedLaterIsHeardWithoutARestart) {
  ASSERT_TRUE(wait_until([&] { return refused() >= 0; }, 20s, 250ms)) << metrics();
  const double before = refused();
  auto env = base_env("gamma");
  env["TRADING_HEAL_AGENTS"] = "ADA_USDT";
  env["DATABASE_URL"] = socket_url(env);
  env["TRADING_HEAL_STATE_ENDPOINT"] = "tcp://" + kCentre + ":" + std::to_string(kStatePort);
  env["TRADING_HEAL_EVENTS_ENDPOINT"] = "tcp://" + kCentre + ":" + std::to_string(kEventsPort);
  env["TRADING_HEAL_CURVE_SECRET_KEY_FILE"] = (dir_ / "keys" / "gamma.key").string();
  env["TRADING_HEAL_CURVE_SERVER_KEY_FILE"] = (dir_ / "keys" / "centre.pub").string();
  spawn("gamma/probe", "rogue", "trading-heal-probe", env);  // the fourth namespace
  ASSERT_TRUE(wait_until([&] { return refused() >= before + 2; }, 20s, 250ms))
      << "gamma's key refused at both endpoints";
  EXPECT_EQ(metrics().find(R"(host="gamma")"), std::string::npos);
  fs::copy_file(dir_ / "keys" / "gamma.pub", dir_ / "hosts.d" / "gamma.pub");
  daemons_.at("centre/exporter").signal(SIGHUP);
  const auto admitted = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until(
      [] {
        return metrics().find(R"(trading_selfheal_host_up{host="gamma"} 1)") != std::string::npos;
      },
      20s, 250ms))
      << metrics();
  std::cerr << "gamma heard "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - admitted).count()
            << " s after its key was admitted\n";
  auto& gamma = daemons_.at("gamma/probe");
  EXPECT_TRUE(gamma.running()) << "not restarted";
}

TEST_F(Hosts, ACutLinkIsSeenWithinTenSeconds) {
  ASSERT_TRUE(wait_until(
      [] {
        return metrics().find(R"(trading_selfheal_host_up{host="beta"} 1)") != std::string::npos;
      },
      30s, 250ms))
      << metrics();
  const auto cut = std::chrono::steady_clock::now();
  set_link('b', false);
  ASSERT_TRUE(wait_until(
      [] {
        return metrics().find(R"(trading_selfheal_host_up{host="beta"} 0)") != std::string::npos;
      },
      10s, 100ms))
      << metrics();
  const double seen = std::chrono::duration<double>(std::chrono::steady_clock::now() - cut).count();
  std::cerr << "link to beta cut: host_up 0 after " << seen << " s\n";
  EXPECT_LT(seen, 10.0);
  const json s = status();
  for (const auto& a : s["agents"]) {
    if (a.value("host", "") == "beta") {
      EXPECT_EQ(a["verdict"], "UNKNOWN") << a.dump();
    }
  }
  EXPECT_NE(metrics().find(R"(trading_selfheal_host_up{host="alpha"} 1)"), std::string::npos);
  set_link('b', true);
  ASSERT_TRUE(wait_until(
      [] {
        return metrics().find(R"(trading_selfheal_host_up{host="beta"} 1)") != std::string::npos;
      },
      30s, 250ms))
      << "beta is heard again after the link is back";
  ASSERT_TRUE(wait_until(all_healthy, 30s, 500ms)) << status().dump();
}

}  // namespace
