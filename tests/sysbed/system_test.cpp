// trading-heal as operators run it (label system): a real system manager (systemd as PID 1, the
// system bus, polkitd, journald) in a pristine container per test (tests/sysbed/sysbed.sh), the
// .deb installed with apt-get, deploy.sh as root with nothing test-only in the env file, the
// hardened units as shipped. The agents are the simulator as system units run as their own user,
// writing to the container's PostgreSQL; the fake Ollama runs on the host's loopback (the
// container shares the host's network namespace, as it must for apt).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "container.hpp"
#include "support/bed.hpp"
#include "support/process.hpp"
#include "support/wait.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace t = trading_heal::test;
using t::Container;
using t::host_sh;
using t::Output;
using t::shq;
using t::wait_until;

const std::vector<std::string> kAgents = {"BTC_USDT", "ETH_USDT",  "XRP_USDT",
                                          "SOL_USDT", "DOGE_USDT", "ADA_USDT"};
const std::vector<std::string> kDaemons = {"probe", "diagnoser", "actuator", "exporter"};
constexpr const char* kReport = "system-report.md";

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// Where the sysbed_package target put the .deb and the agent simulator.
std::string package_dir() { return env_or("TRADING_HEAL_PACKAGE_DIR", TH_DEFAULT_PACKAGE_DIR); }
std::string deb_path() {
  return host_sh("ls -1 " + shq(package_dir()) + "/trading-heal_*.deb 2>/dev/null | tail -1").out;
}

std::string unit(const std::string& daemon) { return "trading-heal-" + daemon + "@main.service"; }

std::map<std::string, std::vector<std::string>>& report() {
  static std::map<std::string, std::vector<std::string>> r;
  return r;
}

class SystemMode : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // sysbed.sh keeps its rootfs and containers in the build directory's sysbed/.
    ::setenv("TRADING_HEAL_SYSBED_DIR",
             env_or("TRADING_HEAL_SYSBED_DIR", TH_DEFAULT_SYSBED_DIR).c_str(), 1);
    ASSERT_FALSE(deb_path().empty())
        << "no .deb in " << package_dir()
        << ": build it first (cmake --build BUILD --target sysbed_package)";
    ollama_.emplace(t::Child::spawn(
        {t::Bed::bin("trading-heal-fake-ollama"), "--listen", "127.0.0.1:0"}, {}, true));
    auto line = ollama_->read_line(10s);
    ASSERT_TRUE(line && line->rfind("listening on ", 0) == 0) << line.value_or("(nothing)");
    ollama_addr_ = line->substr(std::string("listening on ").size());
  }
  static void TearDownTestSuite() {
    ollama_.reset();
    const auto dir = std::filesystem::path(t::Bed::bin("")).parent_path().parent_path();
    std::ofstream out(dir / kReport);
    out << "# System mode\n\nWritten by `system_test` (tests/sysbed): a systemd 252 system manager "
           "in a container, the .deb installed with apt-get, deploy.sh as root.\n";
    for (const auto& [section, rows] : report()) {
      out << "\n## " << section << "\n\n";
      for (const auto& r : rows) out << r << "\n";
    }
  }

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    name_ = "th-sys-" + std::to_string(++count_);
    c_.emplace(name_);
    std::string why;
    ASSERT_TRUE(c_->boot(&why)) << why;
    ASSERT_TRUE(fake("/_fake/reset", "{}"));
    // The agents: the simulator (built without sanitizers) and its libpqxx, like a venv.
    ASSERT_TRUE(c_->put(package_dir() + "/bin/trading-heal-agent-sim",
                        "/opt/crypto-agent/bin/trading-heal-agent-sim", "0755"));
    const std::string pqxx = host_sh("ldconfig -p | awk '/libpqxx-6.4.so / {print $NF; exit}'").out;
    ASSERT_FALSE(pqxx.empty()) << "no libpqxx-6.4 on the host";
    ASSERT_TRUE(c_->put(pqxx, "/opt/crypto-agent/lib/libpqxx-6.4.so", "0644"));
    std::string units;
    for (const auto& a : kAgents) units += " crypto-agent@" + a + ".service";
    Output r = c_->sh("systemctl start" + units);
    ASSERT_TRUE(r.ok()) << r.out;
    ASSERT_TRUE(wait_until([&] { return rows_from_every_agent(); }, 30s, 200ms))
        << c_->sh("journalctl -n 30 --no-pager -u 'crypto-agent@*'").out;
    (void)info;
  }

  void TearDown() override {
    if (HasFailure() && c_) {
      std::cerr << "--- journal of " << name_ << "\n"
                << c_->sh(
                         "journalctl --no-pager -n 60 -o short-precise -u 'trading-heal-*' "
                         "-u polkit")
                       .out
                << "\n--- trading-heal-ctl status\n"
                << c_->sh("trading-heal-ctl status 2>&1").out << "\n";
    }
    if (c_) {
      const std::string left = c_->stop();
      EXPECT_EQ(left, "") << "the container left things behind";
      c_.reset();
    }
  }

  bool rows_from_every_agent() {
    Output r = c_->sh(
        "runuser -u postgres -- psql -p 5433 -Atc "
        "\"SELECT count(DISTINCT symbol) FROM btc.decisions\"");
    return r.ok() && r.out == std::to_string(kAgents.size());
  }

  static bool fake(const std::string& path, const std::string& body) {
    return host_sh("curl -fsS --max-time 5 -X POST -d " + shq(body) + " http://" + ollama_addr_ +
                   path + " >/dev/null")
        .ok();
  }
  static json fake_requests() {
    return json::parse(host_sh("curl -fsS http://" + ollama_addr_ + "/_fake/requests").out, nullptr,
                       false);
  }

  // The settings an operator writes: where the database and the model are, and how eager to be.
  std::vector<std::string> operator_settings() {
    const std::string pw = c_->sh("sed -n 's/^RO_PASSWORD=//p' /root/sysbed-secrets").out;
    return {"DATABASE_URL=postgresql://trading_heal_ro:" + pw + "@127.0.0.1:5433/postgres",
            "OLLAMA_HOST=http://" + ollama_addr_,
            "OLLAMA_TIMEOUT=5",
            "TRADING_HEAL_INTERVAL=1",
            "TRADING_HEAL_STALL_THRESHOLD=5",
            "TRADING_HEAL_STARTUP_GRACE=3",
            "TRADING_HEAL_COOLDOWN=2"};
  }

  // apt-get install ./trading-heal_*.deb, as an operator does; returns the seconds it took.
  double install_package() {
    const std::string deb = deb_path();
    const std::string base = std::filesystem::path(deb).filename().string();
    EXPECT_TRUE(c_->put(deb, "/root/" + base, "0644"));
    const auto t0 = std::chrono::steady_clock::now();
    Output r = c_->sh(
        "cd /root && apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
        "apt-get install -y -q ./" +
        base);
    EXPECT_TRUE(r.ok()) << r.out;
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  Output deploy(const std::string& extra = "") {
    std::string cmd = "/usr/share/trading-heal/deploy/deploy.sh --from-package";
    for (const auto& kv : operator_settings()) cmd += " --env " + shq(kv);
    return c_->sh(cmd + " " + extra);
  }

  void install_and_deploy() {
    install_package();
    Output r = deploy();
    ASSERT_TRUE(r.ok()) << r.out;
    ASSERT_TRUE(wait_until([&] { return fleet_healthy(); }, 30s, 250ms)) << api("/status").dump();
  }

  // GET on the deployment's API with the token deploy.sh made (root reads it in the container).
  json api(const std::string& path) {
    if (token_.empty()) token_ = c_->sh("cat /etc/trading-heal/main.token 2>/dev/null").out;
    Output r = host_sh("curl -fsS --max-time 5 -H " + shq("Authorization: Bearer " + token_) + " " +
                       shq("http://127.0.0.1:9121" + path));
    return r.ok() ? json::parse(r.out, nullptr, false) : json();
  }
  // The container's host name: the `host` label of its series (TRADING_HEAL_HOST's default).
  std::string host() {
    std::string h = c_->sh("hostname").out;
    while (!h.empty() && (h.back() == '\n' || h.back() == ' ')) h.pop_back();
    return h;
  }
  std::string metrics() {
    return host_sh("curl -fsS --max-time 5 http://127.0.0.1:9120/metrics").out;
  }
  bool fleet_healthy() {
    json s = api("/status");
    if (!s.is_object() || !s.contains("agents") || s["agents"].size() != kAgents.size())
      return false;
    for (const auto& a : s["agents"]) {
      if (!a["verdict"].is_string() || a["verdict"] != "HEALTHY") return false;
    }
    return true;
  }
  std::vector<json> audit(const std::string& action, const std::string& symbol = "") {
    json a =
        api("/audit?limit=1000&action=" + action + (symbol.empty() ? "" : "&symbol=" + symbol));
    std::vector<json> out;
    if (a.is_array()) out.assign(a.begin(), a.end());
    return out;
  }
  void fault(const std::string& agent, const std::string& mode) {
    Output r = c_->sh("echo " + shq(mode) + " >/var/lib/crypto-agent/control/" + agent + ".fault");
    ASSERT_TRUE(r.ok()) << r.out;
  }
  std::string user_of(long pid) { return c_->sh("ps -o user:32= -p " + std::to_string(pid)).out; }
  void add(const std::string& section, const std::string& row) { report()[section].push_back(row); }

  std::string name_;
  std::string token_;
  std::optional<Container> c_;
  static inline int count_ = 0;
  static inline std::optional<t::Child> ollama_;
  static inline std::string ollama_addr_;
};

// ---- install the way an operator does --------------------------------------------------------

TEST_F(SystemMode, PackageDeployIsIdempotentAndPurgeLeavesNothing) {
  // The runtime libraries are not on the host before: the package's Depends must bring them.
  const std::vector<std::string> libs = {"libzmq5", "libpqxx-6.4", "libspdlog1.10",
                                         "libprometheus-cpp-core1.0", "libcurl4"};
  for (const auto& l : libs) {
    EXPECT_FALSE(c_->sh("dpkg -s " + l + " >/dev/null 2>&1").ok()) << l << " already installed";
  }
  const double install_s = install_package();
  const std::string autos = c_->sh("apt-mark showauto").out;
  for (const auto& l : libs) {
    EXPECT_NE(autos.find(l), std::string::npos) << l << " did not come as a dependency";
  }
  Output ldd = c_->sh("ldd /usr/bin/trading-heal-* | grep 'not found' || true");
  EXPECT_EQ(ldd.out, "") << "missing libraries";

  Output first = deploy();
  ASSERT_TRUE(first.ok()) << first.out;
  ASSERT_TRUE(wait_until([&] { return fleet_healthy(); }, 30s, 250ms));
  // The env file holds the operator's settings and nothing a test would add.
  Output env = c_->sh(
      "stat -c '%a %U:%G' /etc/trading-heal/main.env && "
      "grep -v '^#' /etc/trading-heal/main.env | grep .");
  ASSERT_TRUE(env.ok()) << env.out;
  EXPECT_EQ(env.out.substr(0, env.out.find('\n')), "640 root:trading-heal-operators");
  for (const char* test_only :
       {"TRADING_HEAL_RUNTIME_DIR", "TRADING_HEAL_DATA_DIR", "ASAN_",
        "TRADING_HEAL_SYSTEMD_SCOPE=user", "XDG_", "TRADING_HEAL_HEARTBEAT_DIR"}) {
    EXPECT_EQ(env.out.find(test_only), std::string::npos) << test_only << " in the env file";
  }
  // The database's and the model's settings went to their daemon's own file (root's only).
  for (const char* secret : {"DATABASE_URL", "POSTGRES_", "OLLAMA_HOST"}) {
    EXPECT_EQ(env.out.find(secret), std::string::npos) << secret << " in the shared env file";
  }
  EXPECT_EQ(c_->sh("stat -c '%a %U:%G' /etc/trading-heal/main.probe.env").out, "600 root:root");
  EXPECT_EQ(c_->sh("stat -c '%a %U:%G' /etc/trading-heal/main.diagnoser.env").out, "600 root:root");
  EXPECT_TRUE(
      c_->sh("grep -q '^DATABASE_URL=postgresql://' /etc/trading-heal/main.probe.env").ok());
  EXPECT_TRUE(c_->sh("grep -q '^OLLAMA_HOST=http://' /etc/trading-heal/main.diagnoser.env").ok());
  // The API token: made by deploy, readable by the operators (ctl) only, handed to the exporter
  // as a credential, never printed; the API wants it.
  EXPECT_EQ(c_->sh("stat -c '%a %U:%G' /etc/trading-heal/main.token").out,
            "640 root:trading-heal-operators");
  const std::string token = c_->sh("cat /etc/trading-heal/main.token").out;
  EXPECT_EQ(token.size(), 64U);
  EXPECT_EQ(first.out.find(token), std::string::npos) << "deploy printed the token";
  EXPECT_EQ(host_sh("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9121/status").out,
            "401");
  EXPECT_TRUE(api("/status").is_object());
  // Each daemon as its user, in its sandbox.
  const std::map<std::string, std::string> users = {{"probe", "trading-heal-probe"},
                                                    {"diagnoser", "trading-heal-diagnoser"},
                                                    {"actuator", "trading-heal-actuator"},
                                                    {"exporter", "trading-heal-exporter"}};
  std::string row = "| daemon | user | exposure |\n|---|---|---|";
  for (const auto& d : kDaemons) {
    const long pid = c_->main_pid(unit(d));
    ASSERT_GT(pid, 0) << d;
    EXPECT_EQ(user_of(pid), users.at(d)) << d;
    Output sec = c_->sh("systemd-analyze security " + unit(d) + " | tail -1");
    std::smatch m;
    const std::regex score("exposure level for .*: ([0-9.]+)");
    ASSERT_TRUE(std::regex_search(sec.out, m, score)) << sec.out;
    const double exposure = std::stod(m[1]);
    const std::map<std::string, double> shipped = {
        {"probe", 1.7}, {"diagnoser", 1.4}, {"actuator", 0.5}, {"exporter", 1.4}};
    EXPECT_LE(exposure, shipped.at(d)) << d << ": " << sec.out;
    row += "\n| " + d + " | " + users.at(d) + " | " + m[1].str() + " |";
  }
  add("Install and deploy", row);

  Output second = deploy();
  ASSERT_TRUE(second.ok()) << second.out;
  EXPECT_NE(second.out.find("nothing to change"), std::string::npos) << second.out;

  // Uninstall and purge, then the package: nothing of trading-heal is left.
  const std::string uids = c_->sh(
                                 "echo $(id -u trading-heal-probe) $(id -u trading-heal-diagnoser) "
                                 "$(id -u trading-heal-actuator) $(id -u trading-heal-exporter)")
                               .out;
  Output un = c_->sh("/usr/share/trading-heal/deploy/deploy.sh --from-package --uninstall --purge");
  ASSERT_TRUE(un.ok()) << un.out;
  Output purge = c_->sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q trading-heal");
  ASSERT_TRUE(purge.ok()) << purge.out;
  const std::vector<std::pair<std::string, std::string>> gone = {
      {"the daemons' users", "getent passwd | grep '^trading-heal'"},
      {"their groups and the operators'", "getent group | grep '^trading-heal'"},
      {"/etc/trading-heal", "test -e /etc/trading-heal"},
      {"/var/lib/trading-heal", "test -e /var/lib/trading-heal"},
      {"/run/trading-heal", "test -e /run/trading-heal"},
      {"the polkit rule", "test -e /etc/polkit-1/rules.d/60-trading-heal-actuator.rules"},
      {"binaries", "ls /usr/bin/trading-heal-* /usr/local/bin/trading-heal-* 2>/dev/null | grep ."},
      {"unit files",
       "ls /lib/systemd/system/trading-heal* /etc/systemd/system/trading-heal* "
       "/etc/systemd/system/*/trading-heal* 2>/dev/null | grep ."},
      {"loaded units", "systemctl list-units --all --no-legend 'trading-heal*' | grep ."},
      {"/usr/share/trading-heal", "test -e /usr/share/trading-heal"},
      {"the package", "dpkg -s trading-heal 2>/dev/null | grep -q '^Status: install'"},
      {"files owned by its users (uids " + uids + ")",
       "for u in " + uids + "; do find / -xdev -uid $u -print -quit 2>/dev/null; done | grep ."},
  };
  std::string checked;
  for (const auto& [what, probe] : gone) {
    Output r = c_->sh(probe);
    EXPECT_FALSE(r.ok()) << what << " is left: " << r.out;
    checked += (checked.empty() ? "" : ", ") + what;
  }
  add("Install and deploy",
      "\n`apt-get install ./trading-heal_*.deb` " + std::to_string(install_s).substr(0, 4) +
          " s (its dependencies from Debian); the second deploy.sh: nothing to change; after "
          "`deploy.sh --uninstall --purge` and `apt-get purge`, none of: " +
          checked + ".");
}

// ---- the privilege boundaries ----------------------------------------------------------------

TEST_F(SystemMode, StallIsHealedThroughPolkitAndDiagnosedFromTheSystemJournal) {
  install_and_deploy();
  ASSERT_TRUE(fake("/_fake/mode", R"({"mode":"ok"})"));
  const long old_pid = c_->main_pid("crypto-agent@BTC_USDT.service");
  fault("BTC_USDT", "stall");
  ASSERT_TRUE(wait_until([&] { return !audit("recovered", "BTC-USDT").empty(); }, 60s, 250ms))
      << c_->sh("journalctl -n 40 --no-pager -u trading-heal-actuator@main").out;
  auto restarts = audit("restart", "BTC-USDT");
  ASSERT_EQ(restarts.size(), 1U);
  const json& r = restarts[0];
  EXPECT_TRUE(r.value("success", false)) << r.dump();
  EXPECT_NE(r.value("detail", "").find("via dbus"), std::string::npos) << r.dump();
  EXPECT_EQ(r.value("diagnosis", ""), "DB lock on decisions table") << r.dump();
  const long new_pid = c_->main_pid("crypto-agent@BTC_USDT.service");
  EXPECT_NE(new_pid, old_pid);
  EXPECT_GT(new_pid, 0);
  // The diagnoser (its own user, group systemd-journal) read the agent's lines
  // from the system journal: they are in the prompt the model got.
  const json reqs = fake_requests();
  ASSERT_TRUE(reqs.is_array() && !reqs.empty()) << reqs.dump();
  const std::string prompt = reqs.back()["body"]["messages"][1]["content"];
  EXPECT_NE(prompt.find("canceling statement due to lock timeout"), std::string::npos) << prompt;
  // As everywhere else: metrics and /status.
  const std::string m = metrics();
  EXPECT_NE(m.find("trading_agent_restart_total{host=\"" + host() + "\",symbol=\"BTC-USDT\"} 1"),
            std::string::npos)
      << m;
  json st = api("/status");
  ASSERT_TRUE(st.is_object());
  const std::string line =
      c_->sh("journalctl -o cat --no-pager -u trading-heal-actuator@main | grep 'restart done'")
          .out;
  add("A stall healed", "`" + line + "`");
  add("A stall healed",
      "\nThe model's prompt held the agent's journal line "
      "`canceling statement due to lock timeout` (read by the diagnoser as "
      "`trading-heal-diagnoser` with `SupplementaryGroups=systemd-journal`).");
}

TEST_F(SystemMode, ThePolkitRuleRefusesWhatItMust) {
  install_and_deploy();
  ASSERT_TRUE(c_->sh("useradd -m -G trading-heal-operators alice").ok());
  auto call = [&](const std::string& user, const std::string& method, const std::string& u) {
    return c_->sh(
        "busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 "
        "org.freedesktop.systemd1.Manager " +
            method + " ss " + shq(u) + " replace",
        user);
  };
  const long pid0 = c_->main_pid("crypto-agent@BTC_USDT.service");
  struct Case {
    std::string user, method, unit, want;  // want: "allowed", "rule" (our NO), "none" (no rule)
  };
  const std::vector<Case> cases = {
      {"trading-heal-actuator", "RestartUnit", "crypto-agent@NEW_USDT.service", "rule"},
      {"trading-heal-actuator", "StopUnit", "crypto-agent@BTC_USDT.service", "rule"},
      {"trading-heal-actuator", "StartUnit", "crypto-agent@BTC_USDT.service", "rule"},
      {"trading-heal-actuator", "RestartUnit", "ssh.service", "rule"},
      {"trading-heal-actuator", "RestartUnit", "postgresql.service", "rule"},
      {"trading-heal-probe", "RestartUnit", "crypto-agent@BTC_USDT.service", "none"},
      {"alice", "RestartUnit", "crypto-agent@BTC_USDT.service", "none"},
  };
  std::string table = "| as | call | unit | answer |\n|---|---|---|---|";
  for (const auto& k : cases) {
    Output r = call(k.user, k.method, k.unit);
    SCOPED_TRACE(k.user + " " + k.method + " " + k.unit + ": " + r.out);
    EXPECT_FALSE(r.ok());
    if (k.want == "rule") {
      EXPECT_NE(r.out.find("Access denied"), std::string::npos);  // our rule's NO
    } else {
      EXPECT_NE(r.out.find("Interactive authentication required"), std::string::npos);  // no rule
    }
    table += "\n| " + k.user + " | " + k.method + " | " + k.unit + " | " + r.out + " |";
  }
  EXPECT_EQ(c_->main_pid("crypto-agent@BTC_USDT.service"), pid0) << "a refused call restarted it";
  EXPECT_EQ(c_->sh("systemctl is-active crypto-agent@NEW_USDT.service").out, "inactive");
  // What the rule allows, to that user only: a restart of a configured agent.
  Output ok = call("trading-heal-actuator", "RestartUnit", "crypto-agent@BTC_USDT.service");
  EXPECT_TRUE(ok.ok()) << ok.out;
  ASSERT_TRUE(wait_until(
      [&] {
        const long p = c_->main_pid("crypto-agent@BTC_USDT.service");
        return p != 0 && p != pid0;
      },
      15s, 100ms));
  table +=
      "\n| trading-heal-actuator | RestartUnit | crypto-agent@BTC_USDT.service | " + ok.out + " |";
  add("The polkit rule", table);
}

TEST_F(SystemMode, OperatorToolsWorkWithNoEnvironment) {
  install_and_deploy();
  ASSERT_TRUE(c_->sh("useradd -m -G trading-heal-operators alice && useradd -m mallory").ok());
  Output status = c_->sh("trading-heal-ctl status", "alice");
  ASSERT_TRUE(status.ok()) << status.out;
  for (const auto& a : kAgents) EXPECT_NE(status.out.find(a), std::string::npos) << status.out;
  Output pause = c_->sh("trading-heal-ctl pause BTC_USDT --for 10m --reason maintenance", "alice");
  ASSERT_TRUE(pause.ok()) << pause.out;
  ASSERT_TRUE(wait_until([&] { return !audit("paused", "BTC-USDT").empty(); }, 10s, 200ms));
  Output resume = c_->sh("trading-heal-ctl resume BTC_USDT", "alice");
  ASSERT_TRUE(resume.ok()) << resume.out;
  ASSERT_TRUE(wait_until([&] { return !audit("resumed", "BTC-USDT").empty(); }, 10s, 200ms));
  Output aud = c_->sh("trading-heal-ctl audit --tail 5", "alice");
  ASSERT_TRUE(aud.ok()) << aud.out;
  EXPECT_NE(aud.out.find("resumed"), std::string::npos) << aud.out;
  Output tap = c_->sh("timeout 20 trading-heal-tap --count 3", "alice");
  ASSERT_TRUE(tap.ok()) << tap.out;
  std::istringstream lines(tap.out);
  int n = 0;
  for (std::string l; std::getline(lines, l);) n += json::parse(l, nullptr, false).is_object();
  EXPECT_EQ(n, 3) << tap.out;
  // Not in the group: refused by the file modes, and told which deployment and file.
  Output denied = c_->sh("trading-heal-ctl pause BTC_USDT", "mallory");
  EXPECT_FALSE(denied.ok());
  EXPECT_NE(denied.out.find("cannot read /etc/trading-heal"), std::string::npos) << denied.out;
  add("Operator tools",
      "As `alice` (group `trading-heal-operators`, no variables set): `trading-heal-ctl "
      "status`, `pause`, `resume`, `audit` and `trading-heal-tap --count 3` "
      "work; as `mallory`: `" +
          denied.out + "`");
}

TEST_F(SystemMode, KilledDaemonsComeBackAndNothingIsLost) {
  install_and_deploy();
  std::string row;
  for (const auto& d : kDaemons) {
    const long pid = c_->main_pid(unit(d));
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(c_->sh("kill -9 " + std::to_string(pid)).ok());
    ASSERT_TRUE(wait_until(
        [&] {
          const long p = c_->main_pid(unit(d));
          return p != 0 && p != pid && c_->sh("systemctl is-active -q " + unit(d)).ok();
        },
        20s, 100ms))
        << d << " not back";
    const std::string restarts = c_->sh("systemctl show -p NRestarts --value " + unit(d)).out;
    row += (row.empty() ? "" : ", ") + d + " (NRestarts=" + restarts + ")";
  }
  ASSERT_TRUE(wait_until([&] { return fleet_healthy(); }, 30s, 250ms));
  // Still healing, and every record once: no sequence gap, no duplicate, the hash chain whole.
  fault("ETH_USDT", "stall");
  ASSERT_TRUE(wait_until([&] { return !audit("recovered", "ETH-USDT").empty(); }, 60s, 250ms));
  EXPECT_EQ(audit("restart", "ETH-USDT").size(), 1U);
  const std::string m = metrics();
  EXPECT_NE(m.find("trading_selfheal_events_gap_total 0"), std::string::npos) << m;
  const std::string file = "/var/lib/trading-heal/main/exporter/trading_heal_audit.jsonl";
  Output verify = c_->sh("trading-heal-ctl audit verify --against-journal " + file);
  EXPECT_TRUE(verify.ok()) << verify.out;
  // The exporter recorded its chain's head in the journal (at each start, rotation, hour, stop):
  // a file cut back afterwards is found.
  ASSERT_TRUE(c_->sh("systemctl stop trading-heal-exporter@main && head -n -2 " + file +
                     " >/root/cut && cat /root/cut >" + file)
                  .ok());
  Output cut = c_->sh("trading-heal-ctl audit verify --against-journal " + file);
  EXPECT_FALSE(cut.ok()) << cut.out;
  EXPECT_NE(cut.out.find("CUT BACK"), std::string::npos) << cut.out;
  EXPECT_TRUE(c_->sh("trading-heal-ctl audit verify " + file).ok()) << "the chain alone is intact";
  add("kill -9", "Back by `Restart=`: " + row +
                     "; then a stall healed, no sequence gap, `audit "
                     "verify --against-journal`: " +
                     verify.out + "; after cutting the last two lines: `" +
                     cut.out.substr(std::min(cut.out.find("CUT BACK"), cut.out.size()), 160) +
                     "...`");
}

// ---- least privilege between the daemons -----------------------------------------------------

// The value of one series in an exposition (-1 when absent).
double sample(const std::string& exposition, const std::string& series) {
  std::istringstream in(exposition);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind(series + " ", 0) == 0) return std::stod(l.substr(series.size() + 1));
  }
  return -1;
}

std::string refused_series(const std::string& host, const std::string& component) {
  return "trading_selfheal_peers_refused_total{component=\"" + component + "\",host=\"" + host +
         "\"}";
}

// Processes of the exporter's user, of the diagnoser's and of an unrelated user speak the real
// protocol to the actuator's sockets (and the exporter's): refused at the handshake, counted;
// the only channel of the diagnoser's user (diagnoses) restarts nothing by itself; a takeover of
// the probe's socket is refused by the readers; an operator's ctl pause works and the fleet still
// heals.
TEST_F(SystemMode, EachSocketAcceptsOnlyItsSenders) {
  install_and_deploy();
  ASSERT_TRUE(c_->put(package_dir() + "/bin/trading-heal-intruder",
                      "/usr/local/bin/trading-heal-intruder", "0755"));
  ASSERT_TRUE(c_->sh("useradd -m -G trading-heal-operators alice && useradd -m mallory").ok());
  const std::string rt = "ipc:///run/trading-heal/main/";
  const long btc0 = c_->main_pid("crypto-agent@BTC_USDT.service");
  const std::string m0 = metrics();
  const std::string h = host();
  const double act0 = sample(m0, refused_series(h, "actuator"));
  const double exp0 = sample(m0, refused_series(h, "exporter"));
  ASSERT_GE(act0, 0) << m0;
  ASSERT_GE(exp0, 0) << m0;

  struct Try {
    std::string user, kind, socket, want;  // want: "no answer" or "answered ok=true"
  };
  std::vector<Try> tries;
  for (const std::string u : {"trading-heal-exporter", "trading-heal-diagnoser", "mallory"}) {
    tries.push_back({u, "pause", "actuator/control.sock", "no answer"});
    tries.push_back({u, "health", "actuator/control.sock", "no answer"});
  }
  tries.push_back({"trading-heal-exporter", "diagnosis", "actuator/diagnosis.sock", "no answer"});
  tries.push_back({"mallory", "diagnosis", "actuator/diagnosis.sock", "no answer"});
  tries.push_back(
      {"trading-heal-diagnoser", "diagnosis", "actuator/diagnosis.sock", "answered ok=true"});
  tries.push_back({"mallory", "event", "exporter/events.sock", "no answer"});
  tries.push_back({"trading-heal-exporter", "pause", "diagnoser/control.sock", "no answer"});
  std::string table = "| as | sends | to | answer |\n|---|---|---|---|";
  int refused_at_actuator = 0;
  for (const auto& k : tries) {
    Output r = c_->sh(
        "trading-heal-intruder send " + shq(rt + k.socket) + " " + k.kind + " BTC_USDT", k.user);
    EXPECT_EQ(r.out.substr(0, k.want.size()), k.want) << k.user << " " << k.kind << " " << k.socket;
    if (k.want == "no answer" && k.socket.rfind("actuator/", 0) == 0) ++refused_at_actuator;
    table += "\n| " + k.user + " | " + k.kind + " | " + k.socket + " | " + r.out + " |";
  }
  // Nobody but the probe's user can put a socket where the probe's is.
  for (const std::string u : {"trading-heal-exporter", "trading-heal-diagnoser", "mallory"}) {
    Output r = c_->sh(
        "trading-heal-intruder publish " + shq(rt + "probe/health.sock.x") + " BTC_USDT 1", u);
    EXPECT_NE(r.out.find("cannot bind"), std::string::npos) << u << ": " << r.out;
  }
  // Counted: every refused try at least once (a refused DEALER retries its handshake).
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string m = metrics();
        return sample(m, refused_series(h, "actuator")) >= act0 + refused_at_actuator &&
               sample(m, refused_series(h, "exporter")) >= exp0 + 1;
      },
      15s, 250ms))
      << metrics();
  EXPECT_NE(c_->sh("journalctl -o cat --no-pager -u trading-heal-actuator@main | "
                   "grep 'peer refused component=actuator socket=control uid='")
                .out,
            "");

  // A takeover of the probe's socket: root stops the probe and hands its directory to the
  // exporter's user, whose process publishes "BTC_USDT is DOWN" there. The actuator and the
  // diagnoser, reconnecting, refuse that publisher: BTC_USDT is not restarted.
  const double act1 = sample(metrics(), refused_series(h, "actuator"));
  ASSERT_TRUE(c_->sh("systemctl stop trading-heal-probe@main && rm -f "
                     "/run/trading-heal/main/probe/health.sock && "
                     "chown trading-heal-exporter /run/trading-heal/main/probe")
                  .ok());
  Output pub =
      c_->sh("trading-heal-intruder publish " + shq(rt + "probe/health.sock") + " BTC_USDT 6",
             "trading-heal-exporter");
  EXPECT_EQ(pub.out, "bound") << pub.out;
  ASSERT_TRUE(c_->sh("rm -f /run/trading-heal/main/probe/health.sock && "
                     "chown trading-heal-probe /run/trading-heal/main/probe && "
                     "systemctl start trading-heal-probe@main")
                  .ok());
  EXPECT_EQ(c_->main_pid("crypto-agent@BTC_USDT.service"), btc0) << "restarted on forged reports";
  EXPECT_TRUE(audit("restart", "BTC-USDT").empty());
  ASSERT_TRUE(wait_until([&] { return sample(metrics(), refused_series(h, "actuator")) > act1; },
                         10s, 250ms));
  // The diagnoser's user's diagnosis was taken (its channel) and restarted nothing.
  EXPECT_EQ(c_->main_pid("crypto-agent@BTC_USDT.service"), btc0);

  // An operator's command works; the fleet still heals.
  Output pause = c_->sh("trading-heal-ctl pause SOL_USDT --for 10m --reason maintenance", "alice");
  EXPECT_TRUE(pause.ok()) << pause.out;
  ASSERT_TRUE(wait_until([&] { return !audit("paused", "SOL-USDT").empty(); }, 10s, 200ms));
  EXPECT_TRUE(audit("paused", "BTC-USDT").empty()) << "an intruder's pause counted";
  ASSERT_TRUE(wait_until([&] { return fleet_healthy(); }, 30s, 250ms));
  fault("ETH_USDT", "stall");
  ASSERT_TRUE(wait_until([&] { return !audit("recovered", "ETH-USDT").empty(); }, 60s, 250ms));
  const std::string m = metrics();
  table +=
      "\n\n`trading_selfheal_peers_refused_total`: actuator " +
      std::to_string(static_cast<long>(sample(m, refused_series(h, "actuator")))) + ", exporter " +
      std::to_string(static_cast<long>(sample(m, refused_series(h, "exporter")))) + ", diagnoser " +
      std::to_string(static_cast<long>(sample(m, refused_series(h, "diagnoser")))) +
      ". Binding at the probe's socket: `cannot bind` for all three users; a takeover of its "
      "directory (made by root) is refused by the readers, BTC_USDT not restarted. "
      "`trading-heal-ctl pause` as an operator: ok; a stall then healed.";
  add("Who may speak", table);
}

// The database password reaches the probe only: not another daemon's environment, not `ps`, not
// a log line or an error message, with a good DSN and with a bad one.
TEST_F(SystemMode, SecretsReachOnlyTheirDaemonAndNoOutput) {
  install_and_deploy();
  const std::string pw = c_->sh("sed -n 's/^RO_PASSWORD=//p' /root/sysbed-secrets").out;
  ASSERT_GE(pw.size(), 16U);
  for (const auto& d : kDaemons) {
    const long pid = c_->main_pid(unit(d));
    ASSERT_GT(pid, 0) << d;
    Output env = c_->sh("tr '\\0' '\\n' </proc/" + std::to_string(pid) + "/environ");
    ASSERT_TRUE(env.ok()) << env.out;
    EXPECT_EQ(env.out.find(pw) != std::string::npos, d == "probe") << d;
    EXPECT_EQ(env.out.find("OLLAMA_HOST=") != std::string::npos, d == "diagnoser") << d;
    EXPECT_EQ(env.out.find("CREDENTIALS_DIRECTORY=") != std::string::npos, d == "exporter") << d;
  }
  EXPECT_EQ(c_->sh("ps -eo args | grep -F -- " + shq(pw) + " | grep -v grep").out, "");
  // A wrong password: the probe says it cannot connect, naming the database, not the password.
  ASSERT_TRUE(c_->sh("sed -i 's/" + pw +
                     "/planted-wrong-secret/' /etc/trading-heal/main.probe.env && "
                     "systemctl restart trading-heal-probe@main")
                  .ok());
  ASSERT_TRUE(wait_until(
      [&] {
        return c_
            ->sh(
                "journalctl -o cat --no-pager -u trading-heal-probe@main | "
                "grep -qF 'trading_heal_ro:***@127.0.0.1:5433'")
            .ok();
      },
      20s, 250ms))
      << c_->sh("journalctl -o cat --no-pager -n 20 -u trading-heal-probe@main").out;
  // Each daemon started by hand with both DSNs in its environment, and what it prints.
  std::string by_hand;
  for (const auto& d : kDaemons) {
    for (const std::string& secret : {pw, std::string("planted-wrong-secret")}) {
      Output r = c_->sh(
          "d=$(mktemp -d) && timeout -s TERM 4 env -i PATH=/usr/bin:/bin "
          "DATABASE_URL=postgresql://trading_heal_ro:" +
          secret +
          "@127.0.0.1:5433/postgres "
          "POSTGRES_PASSWORD=" +
          secret +
          " TRADING_HEAL_RUNTIME_DIR=$d/run TRADING_HEAL_DATA_DIR=$d/data "
          "TRADING_HEAL_METRICS_LISTEN=127.0.0.1:0 TRADING_HEAL_API_LISTEN=127.0.0.1:0 "
          "TRADING_HEAL_SYSTEMD_SCOPE=system TRADING_HEAL_INTERVAL=1 /usr/bin/trading-heal-" +
          d + " 2>&1; rm -rf $d");
      EXPECT_FALSE(r.out.empty()) << d;
      EXPECT_EQ(r.out.find(secret), std::string::npos) << d << " printed the password:\n" << r.out;
      by_hand += r.out + "\n";
    }
  }
  EXPECT_NE(by_hand.find("trading_heal_ro:***@127.0.0.1:5433"), std::string::npos) << by_hand;
  for (const std::string& secret : {pw, std::string("planted-wrong-secret")}) {
    EXPECT_EQ(c_->sh("journalctl --no-pager -o cat | grep -F -- " + shq(secret)).out, "")
        << "the password in the journal";
  }
  add("Secrets",
      "The database password only in the probe's environment (not the diagnoser's, "
      "the actuator's or the exporter's, nor `ps`); the model's address only in the "
      "diagnoser's; the API token as the exporter's credential. Each daemon started "
      "by hand with a good and a wrong password in `DATABASE_URL` and "
      "`POSTGRES_PASSWORD`: neither in its output; neither in the journal.");
}

// ---- deploy over ssh ---------------------------------------------------------------------------

TEST_F(SystemMode, DeployOverSshInstallsThePackageWithItsDependencies) {
  const std::string dir = "/tmp/th-sys-ssh-" + std::to_string(::getpid());
  host_sh("rm -rf " + dir + " && mkdir -m 700 " + dir);
  ASSERT_TRUE(host_sh("ssh-keygen -q -t ed25519 -N '' -f " + dir + "/key").ok());
  ASSERT_TRUE(c_->put(dir + "/key.pub", "/root/.ssh/authorized_keys", "0600"));
  Output sshd = c_->sh("ssh-keygen -A && systemctl start ssh.service");
  ASSERT_TRUE(sshd.ok()) << sshd.out;
  std::string cmd = shq(t::Bed::source_dir() + "/deploy/deploy.sh") + " --deb " + shq(deb_path()) +
                    " --ssh-opt Port=2222 --ssh-opt IdentityFile=" + dir + "/key" +
                    " --ssh-opt UserKnownHostsFile=" + dir + "/known_hosts" +
                    " --ssh-opt StrictHostKeyChecking=accept-new";
  for (const auto& kv : operator_settings()) cmd += " --env " + shq(kv);
  Output r = host_sh(cmd + " root@127.0.0.1");
  host_sh("rm -rf " + dir);
  ASSERT_TRUE(r.ok()) << r.out;
  // The same result as installing by hand: the package with its dependencies, the users, the
  // running target, the API.
  EXPECT_TRUE(c_->sh("dpkg -s trading-heal | grep -q '^Status: install ok installed'").ok());
  EXPECT_NE(c_->sh("apt-mark showauto").out.find("libzmq5"), std::string::npos);
  EXPECT_TRUE(c_->sh("getent passwd trading-heal-actuator").ok());
  EXPECT_TRUE(c_->sh("systemctl is-active -q trading-heal@main.target").ok());
  ASSERT_TRUE(wait_until([&] { return fleet_healthy(); }, 30s, 250ms));
  EXPECT_NE(r.out.find("verify: GET http://127.0.0.1:9121/health -> {\"status\":\"ok\"}"),
            std::string::npos)
      << r.out;
  add("Deploy over ssh",
      "`deploy.sh --deb trading-heal_*.deb root@127.0.0.1` (sshd in the "
      "container on port 2222): the package and its dependencies installed, "
      "the target running, /status healthy.");
}

// Many hosts from one place (issue 18): a centre and an agent host deployed over ssh, here both in
// one container (instance `centre`: the exporter and the diagnoser that asks the model, bound on
// 127.0.0.1:9130-9133; instance `main`: probe, diagnoser, actuator, named agenthost1). The host's
// run fetches the centre's key and adds its own to the centre's hosts.d; the centre then hears
// the host's agents, and the host's diagnosis is answered by the centre's model (through the
// hardened units and the peer checks of both). A second run of both changes nothing and keeps
// every key.
TEST_F(SystemMode, DeployRolesCentreAndHostOverSshExchangeKeysIdempotently) {
  const std::string dir = "/tmp/th-sys-roles-" + std::to_string(::getpid());
  host_sh("rm -rf " + dir + " && mkdir -m 700 " + dir);
  ASSERT_TRUE(host_sh("ssh-keygen -q -t ed25519 -N '' -f " + dir + "/key").ok());
  ASSERT_TRUE(c_->put(dir + "/key.pub", "/root/.ssh/authorized_keys", "0600"));
  Output sshd = c_->sh("ssh-keygen -A && systemctl start ssh.service");
  ASSERT_TRUE(sshd.ok()) << sshd.out;
  const std::string base = shq(t::Bed::source_dir() + "/deploy/deploy.sh") + " --deb " +
                           shq(deb_path()) + " --ssh-opt Port=2222 --ssh-opt IdentityFile=" + dir +
                           "/key --ssh-opt UserKnownHostsFile=" + dir +
                           "/known_hosts --ssh-opt StrictHostKeyChecking=accept-new";
  const std::string centre_cmd =
      base + " --role centre --centre 127.0.0.1 --instance centre --env " +
      shq("OLLAMA_HOST=http://" + ollama_addr_) + " --env OLLAMA_TIMEOUT=5 root@127.0.0.1";
  std::string host_cmd =
      base + " --role host --centre 127.0.0.1 --host-name agenthost1 --instance main";
  for (const auto& kv : operator_settings()) host_cmd += " --env " + shq(kv);
  host_cmd += " root@127.0.0.1";  // the centre's ssh: root@ the --centre address (the default)

  Output centre = host_sh(centre_cmd);
  ASSERT_TRUE(centre.ok()) << centre.out;
  Output host = host_sh(host_cmd);
  ASSERT_TRUE(host.ok()) << host.out;
  EXPECT_NE(host.out.find("agenthost1 is deployed and the centre (root@127.0.0.1) allows it"),
            std::string::npos)
      << host.out;

  // Each role runs its daemons only; the others' instances are masked.
  for (const auto& [u, want] : std::vector<std::pair<std::string, std::string>>{
           {"trading-heal-exporter@centre", "active"},
           {"trading-heal-diagnoser@centre", "active"},
           {"trading-heal-probe@centre", "inactive"},
           {"trading-heal-actuator@centre", "inactive"},
           {"trading-heal-exporter@main", "inactive"},
           {"trading-heal-probe@main", "active"},
           {"trading-heal-diagnoser@main", "active"},
           {"trading-heal-actuator@main", "active"}}) {
    EXPECT_EQ(c_->sh("systemctl is-active " + u + ".service").out, want) << u;
    if (want == "inactive") {
      EXPECT_EQ(c_->sh("systemctl is-enabled " + u + ".service").out, "masked") << u;
    }
  }
  // Keys: each made once, the secret one its daemon's alone; the exchange done.
  const std::string keys = "/etc/trading-heal/keys/";
  EXPECT_EQ(c_->sh("stat -c '%a %U:%G' " + keys + "centre.key").out,
            "600 trading-heal-exporter:trading-heal-exporter");
  EXPECT_EQ(c_->sh("stat -c '%a %U:%G' " + keys + "agenthost1.key").out,
            "600 trading-heal-probe:trading-heal-probe");
  EXPECT_EQ(c_->sh("stat -c '%a %U:%G' /etc/trading-heal/hosts.d/agenthost1.pub").out,
            "644 root:root");
  EXPECT_TRUE(
      c_->sh("cmp " + keys + "agenthost1.pub /etc/trading-heal/hosts.d/agenthost1.pub").ok());
  // The links and keys are in the daemons' own files (root's only), never in the shared ones.
  EXPECT_EQ(c_->sh("stat -c '%a %U:%G' /etc/trading-heal/centre.exporter.env").out,
            "600 root:root");
  EXPECT_TRUE(c_->sh("grep -qx 'TRADING_HEAL_STATE_ENDPOINT=tcp://127.0.0.1:9130' "
                     "/etc/trading-heal/centre.exporter.env")
                  .ok());
  EXPECT_TRUE(c_->sh("grep -qx 'TRADING_HEAL_EVENTS_ENDPOINT=tcp://127.0.0.1:9131' "
                     "/etc/trading-heal/main.probe.env")
                  .ok());
  EXPECT_TRUE(c_->sh("grep -qx 'TRADING_HEAL_FLEET_ENDPOINT=tcp://127.0.0.1:9132' "
                     "/etc/trading-heal/main.probe.env")
                  .ok());
  EXPECT_TRUE(c_->sh("grep -qx 'TRADING_HEAL_RELAY_ENDPOINT=ipc:///run/trading-heal/main/probe/"
                     "relay.sock' /etc/trading-heal/main.env")
                  .ok());
  EXPECT_FALSE(
      c_->sh("cat /etc/trading-heal/main.env /etc/trading-heal/centre.env "
             "/etc/trading-heal/main.diagnoser.env | grep -v '^#' | grep -E 'tcp://|CURVE'")
          .ok());
  // The centre hears the host: its six agents, healthy, under the host's name.
  token_ = c_->sh("cat /etc/trading-heal/centre.token").out;
  json last;
  const bool heard = wait_until(
      [&] {
        last = api("/status");
        if (!last.is_object() || !last.contains("agents") || last["agents"].size() != 6)
          return false;
        for (const auto& a : last["agents"]) {
          if (a["host"] != "agenthost1" || a["verdict"] != "HEALTHY") return false;
        }
        return last["hosts"].contains("agenthost1") && last["hosts"]["agenthost1"]["up"] == true;
      },
      40s, 500ms);
  EXPECT_TRUE(heard) << last.dump() << "\n"
                     << c_->sh(
                              "journalctl --no-pager -n 30 -u trading-heal-probe@main "
                              "-u trading-heal-exporter@centre")
                            .out;
  // The host's diagnosis, answered by the centre's model: host diagnoser -> host probe -> tcp
  // -> centre exporter -> centre diagnoser -> the (fake) Ollama, and back.
  ASSERT_TRUE(fake("/_fake/reset", "{}"));
  Output asked = c_->sh("trading-heal-ctl --instance main diagnose BTC_USDT --no-wait");
  EXPECT_TRUE(asked.ok()) << asked.out;
  json diagnosis;
  const bool answered = wait_until(
      [&] {
        // One audit line per line of output.
        std::istringstream out(
            c_->sh("trading-heal-ctl --instance centre --json audit --action diagnosis --tail 20")
                .out);
        for (std::string line; std::getline(out, line);) {
          const json l = json::parse(line, nullptr, false);
          if (l.is_object() && l.value("host", "") == "agenthost1" &&
              l.value("agent", "") == "BTC_USDT") {
            diagnosis = l;
            return true;
          }
        }
        return false;
      },
      30s, 500ms);
  ASSERT_TRUE(answered) << c_->sh(
                                 "journalctl --no-pager -n 30 -u trading-heal-diagnoser@main "
                                 "-u trading-heal-diagnoser@centre -u trading-heal-exporter@centre")
                               .out;
  EXPECT_EQ(diagnosis.value("field_source", ""), "llm") << diagnosis.dump();
  const json sent = fake_requests();
  EXPECT_TRUE(sent.is_array() && !sent.empty() && sent.dump().find("BTC_USDT") != std::string::npos)
      << sent.dump();
  EXPECT_TRUE(c_->sh("journalctl --no-pager -u trading-heal-diagnoser@centre | "
                     "grep -q 'model request host=agenthost1 .*result=ok'")
                  .ok());

  // Idempotent: both again change nothing, every key the same.
  const std::string sums = "sha256sum " + keys + "* /etc/trading-heal/hosts.d/*";
  const std::string before = c_->sh(sums).out;
  Output centre2 = host_sh(centre_cmd);
  ASSERT_TRUE(centre2.ok()) << centre2.out;
  EXPECT_NE(centre2.out.find("nothing to change"), std::string::npos) << centre2.out;
  Output host2 = host_sh(host_cmd);
  ASSERT_TRUE(host2.ok()) << host2.out;
  const auto count = [](const std::string& s, const std::string& w) {
    std::size_t n = 0;
    for (auto p = s.find(w); p != std::string::npos; p = s.find(w, p + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count(host2.out, "nothing to change"), 2U) << host2.out;  // the host, the centre
  EXPECT_EQ(c_->sh(sums).out, before);
  // A stranger may not take a known host's name.
  ASSERT_TRUE(host_sh("mkdir -p " + dir + "/k2 && " + t::Bed::bin("trading-heal-ctl") +
                      " keygen agenthost1 --dir " + dir + "/k2 >/dev/null")
                  .ok());
  Output thief = host_sh(base + " --role centre --hosts-only --add-host agenthost1=" + dir +
                         "/k2/agenthost1.pub root@127.0.0.1");
  EXPECT_FALSE(thief.ok());
  EXPECT_NE(thief.out.find("exists with another key"), std::string::npos) << thief.out;
  EXPECT_EQ(c_->sh(sums).out, before);
  host_sh("rm -rf " + dir);
  add("Many hosts: deploy --role",
      "`deploy.sh --role centre root@127.0.0.1`, then `deploy.sh --role host --centre 127.0.0.1 "
      "root@127.0.0.1` (both over ssh, one container): keys made and exchanged, the centre hears "
      "the host's six agents healthy, the host's diagnosis answered by the centre's model; a "
      "second run of both changes nothing, keys unchanged; a "
      "second key for a known host name refused.");
}

}  // namespace
