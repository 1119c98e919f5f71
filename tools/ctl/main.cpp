// trading-heal-ctl: the operator's tool. Fleet status and the audit from the exporter's API;
// pause/resume through the actuator's control socket; diagnose-now through the diagnoser's.
#include <httplib.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include <tl/expected.hpp>

#include "format.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/common/curve.hpp"
#include "trading_heal/common/guarded_main.hpp"
#include "trading_heal/common/instance.hpp"
#include "trading_heal/common/peer_guard.hpp"
#include "trading_heal/common/settings.hpp"
#include "trading_heal/common/text.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/proto/json.hpp"

namespace th = trading_heal;
using nlohmann::json;

namespace {

constexpr int kExitUnavailable = 69;  // EX_UNAVAILABLE: the daemon asked is not running

constexpr const char* kUsage = R"(usage: trading-heal-ctl [--json] COMMAND [ARGS]

  status                          the fleet: verdict, decision age, failures, restarts, incident
  pause AGENT [--for DURATION] [--reason TEXT]
                                  stop healing AGENT (e.g. --for 30m; default until resumed)
  resume AGENT                    heal AGENT again
  diagnose AGENT [--no-wait]      diagnose AGENT now and print the result when it arrives
  audit [--symbol S] [--action A] [--tail N]
                                  the audit log, oldest first (default the last 20 events)
  settings [--markdown]           every setting: default, which programs read it, meaning
                                  (--json: a list; --markdown: the README's table)
  keygen NAME [--dir DIR] [--owner USER]
                                  a CURVE key pair for tcp:// links between hosts: DIR/NAME.key
                                  (secret, 0600, owned by USER) and DIR/NAME.pub (give it to the
                                  other side's TRADING_HEAL_HOSTS_DIR); default DIR
                                  /etc/trading-heal/keys; never replaces existing keys
  audit verify [--against-journal] FILE...
                                  check the audit file's hash chain (rotated files oldest first);
                                  --against-journal: and that no recorded head was cut off

  --json                          machine-readable output (the daemons' JSON)
  --instance NAME                 the deployment (default: TRADING_HEAL_INSTANCE, else the only
                                  one installed, else main)
  --user                          a deployment in your user manager (deploy.sh --user)
  -h, --help                      this text

Finds the deployment as its units do: its environment file (/etc/trading-heal/NAME.env; with
--user $XDG_CONFIG_HOME/trading-heal/NAME.env) over the units' runtime directory
(/run/trading-heal/NAME, $XDG_RUNTIME_DIR/trading-heal/NAME); variables set in the caller's
environment win (TRADING_HEAL_API_LISTEN, TRADING_HEAL_API_TOKEN_FILE,
TRADING_HEAL_CONTROL_ENDPOINT, TRADING_HEAL_DIAGNOSER_CONTROL_ENDPOINT,
TRADING_HEAL_RUNTIME_DIR, OLLAMA_TIMEOUT).
Exit status: 0 ok, 1 refused or failed, 64 usage, 69 a daemon is not running, 78 bad config.
)";

struct Ctx {
  th::common::Config cfg;
  bool as_json = false;
  std::string where;  // the deployment talked to, for messages: "instance main (system, ...)"
};

int usage(const std::string& msg) {
  std::cerr << "trading-heal-ctl: " << msg << "\n(try --help)\n";
  return th::common::kExitUsage;
}

// ---- the exporter's HTTP API ----------------------------------------------------------------

std::pair<std::string, int> api_address(const std::string& listen) {
  const auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host == "0.0.0.0" || host == "*" || host.empty()) host = "127.0.0.1";
  if (host == "::" || host == "[::]") host = "::1";
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return {host, std::atoi(listen.c_str() + colon + 1)};
}

// GET path from the exporter; nullopt (after printing why) when it cannot be had.
std::optional<json> api_get(const Ctx& c, const std::string& path, int* exit_code) {
  auto [host, port] = api_address(c.cfg.api_listen);
  httplib::Client cli(host, port);
  cli.set_connection_timeout(3);
  cli.set_read_timeout(10);
  httplib::Headers headers;
  if (!c.cfg.api_token_file.empty()) {
    std::ifstream in(c.cfg.api_token_file);
    std::string token;
    std::getline(in, token);
    if (token.empty()) {
      std::cerr << "trading-heal-ctl: cannot read a token from TRADING_HEAL_API_TOKEN_FILE="
                << c.cfg.api_token_file << "\n";
      *exit_code = th::common::kExitConfig;
      return std::nullopt;
    }
    headers.emplace("Authorization", "Bearer " + token);
  }
  auto res = cli.Get(path, headers);
  if (!res) {
    std::cerr << "trading-heal-ctl: the exporter does not answer on " << host << ":" << port << " ("
              << httplib::to_string(res.error()) << "): is trading-heal-exporter running? ("
              << c.where << ")\n";
    *exit_code = kExitUnavailable;
    return std::nullopt;
  }
  if (res->status != 200) {
    std::cerr << "trading-heal-ctl: GET " << path << " answered " << res->status << ": "
              << th::common::inert(res->body.substr(0, 2000)) << "\n";
    *exit_code = 1;
    return std::nullopt;
  }
  try {
    return json::parse(res->body);
  } catch (const json::exception& e) {
    std::cerr << "trading-heal-ctl: GET " << path << " returned invalid JSON: " << e.what() << "\n";
    *exit_code = 1;
    return std::nullopt;
  }
}

// ---- control sockets ------------------------------------------------------------------------

// Sends a command and waits for the Ack; nullopt (after printing why) when nobody answers.
std::optional<th::proto::Ack> command(const Ctx& c, const std::string& endpoint,
                                      const std::string& daemon, const th::proto::Command& cmd,
                                      int* exit_code) {
  if (endpoint.rfind("ipc://", 0) == 0 && ::access(endpoint.c_str() + 6, F_OK) != 0) {
    std::cerr << "trading-heal-ctl: " << endpoint.substr(6) << " does not exist: is trading-heal-"
              << daemon << " running? (" << c.where << ")\n";
    *exit_code = kExitUnavailable;
    return std::nullopt;
  }
  zmq::context_t ctx;
  auto s = th::common::make_socket(ctx, zmq::socket_type::dealer, {.linger_ms = 0});
  if (auto r = th::common::connect_endpoint(s, endpoint); !r) {
    std::cerr << "trading-heal-ctl: " << r.error() << "\n";
    *exit_code = th::common::kExitConfig;
    return std::nullopt;
  }
  th::common::SystemClock clock;
  th::common::Stamper stamper("ctl", clock);
  const auto msg = stamper.stamp(cmd);
  if (!th::common::send_message(s, msg, zmq::send_flags::none)) {
    std::cerr << "trading-heal-ctl: cannot send to " << endpoint << "\n";
    *exit_code = kExitUnavailable;
    return std::nullopt;
  }
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  th::proto::RejectCounter rejects;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    zmq::message_t frame;
    if (!s.recv(frame, zmq::recv_flags::dontwait)) continue;
    auto reply = th::common::decode_frame(frame, rejects);
    if (!reply) continue;
    if (const auto* ack = std::get_if<th::proto::Ack>(&reply->body)) return *ack;
  }
  std::cerr << "trading-heal-ctl: no answer from trading-heal-" << daemon << " on " << endpoint
            << " within 5 s: is it running? (" << c.where << ")\n";
  *exit_code = kExitUnavailable;
  return std::nullopt;
}

int print_ack(const Ctx& c, const th::proto::Ack& ack, const std::string& what) {
  if (c.as_json) {
    json j{{"ok", ack.ok}};
    try {
      j["detail"] = json::parse(ack.detail);
    } catch (const json::exception&) {
      j["detail"] = ack.detail;
    }
    std::cout << j.dump() << "\n";
  } else {
    std::cout << what << (ack.ok ? ": ok" : ": REFUSED") << (ack.detail.empty() ? "" : " — ")
              << th::common::inert(ack.detail) << "\n";
  }
  return ack.ok ? 0 : 1;
}

// ---- commands -------------------------------------------------------------------------------

int cmd_status(const Ctx& c) {
  int rc = 0;
  auto status = api_get(c, "/status", &rc);
  if (!status) return rc;
  if (c.as_json) {
    std::cout << status->dump(2) << "\n";
  } else {
    std::cout << th::ctl::format_status(*status, ::isatty(STDOUT_FILENO) == 1);
  }
  return 0;
}

int cmd_pause_resume(const Ctx& c, bool pause, const std::vector<std::string>& args) {
  if (args.empty()) return usage(std::string(pause ? "pause" : "resume") + " needs an AGENT");
  th::proto::Command cmd;
  cmd.verb = pause ? th::proto::CommandVerb::kPause : th::proto::CommandVerb::kResume;
  cmd.agent = args[0];
  if (c.cfg.find_agent(cmd.agent) == nullptr) {
    std::cerr << "trading-heal-ctl: " << cmd.agent << " is not a configured agent\n";
    return 1;
  }
  cmd.reason = "operator " + std::string(std::getenv("USER") ? std::getenv("USER") : "?");
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (pause && args[i] == "--for" && i + 1 < args.size()) {
      const double s = th::ctl::parse_duration_seconds(args[++i]);
      if (s <= 0) return usage("--for needs a duration like 90s, 30m, 2h; got " + args[i]);
      cmd.until = th::common::to_epoch_seconds(std::chrono::system_clock::now()) + s;
    } else if (args[i] == "--reason" && i + 1 < args.size()) {
      cmd.reason = args[++i];
    } else {
      return usage("unknown argument " + args[i]);
    }
  }
  int rc = 0;
  auto ack = command(c, c.cfg.endpoints.actuator_control, "actuator", cmd, &rc);
  if (!ack) return rc;
  return print_ack(c, *ack, std::string(pause ? "pause " : "resume ") + cmd.agent);
}

int cmd_diagnose(const Ctx& c, const std::vector<std::string>& args) {
  if (args.empty()) return usage("diagnose needs an AGENT");
  const auto* spec = c.cfg.find_agent(args[0]);
  if (spec == nullptr) {
    std::cerr << "trading-heal-ctl: " << args[0] << " is not a configured agent\n";
    return 1;
  }
  const bool wait = !(args.size() > 1 && args[1] == "--no-wait");
  th::proto::Command cmd;
  cmd.verb = th::proto::CommandVerb::kDiagnose;
  cmd.agent = spec->instance;
  cmd.request_id = th::common::random_boot_id().substr(0, 12);
  const double asked = th::common::to_epoch_seconds(std::chrono::system_clock::now());
  int rc = 0;
  auto ack = command(c, c.cfg.endpoints.diagnoser_control, "diagnoser", cmd, &rc);
  if (!ack) return rc;
  if (!wait || !ack->ok) return print_ack(c, *ack, "diagnose " + cmd.agent);
  if (!c.as_json) std::cerr << "diagnosis of " << cmd.agent << " queued; waiting for it...\n";
  // The result reaches the audit as a diagnosis (or ollama_error) event.
  const auto deadline =
      std::chrono::steady_clock::now() + c.cfg.ollama.timeout + std::chrono::seconds(15);
  char since[32];
  std::snprintf(since, sizeof since, "%.3f", asked - 1);
  while (std::chrono::steady_clock::now() < deadline) {
    auto events =
        api_get(c, "/audit?symbol=" + spec->symbol + "&since=" + since + "&limit=50", &rc);
    if (!events) return rc;
    for (const auto& e : *events) {
      if (e.value("action", "") == "diagnosis" &&
          e.value("agent", spec->instance) == spec->instance) {
        std::cout << (c.as_json ? e.dump() : th::ctl::format_audit_line(e)) << "\n";
        return 0;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  std::cerr << "trading-heal-ctl: no diagnosis of " << cmd.agent << " arrived in time\n";
  return 1;
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", ch);
      out += buf;
    }
  }
  return out;
}

int cmd_audit(const Ctx& c, const std::vector<std::string>& args, const char* argv0) {
  if (!args.empty() && args[0] == "verify") {
    if (args.size() < 2) return usage("audit verify needs FILE...");
    // The exporter binary next to this one owns the chain format.
    std::string exe = argv0;
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) exe = std::string(self, static_cast<std::size_t>(n));
    exe = exe.substr(0, exe.rfind('/') + 1) + "trading-heal-exporter";
    std::vector<char*> argv{exe.data(), const_cast<char*>("--verify-audit")};
    std::vector<std::string> files(args.begin() + 1, args.end());  // may start --against-journal
    for (auto& f : files) argv.push_back(f.data());
    argv.push_back(nullptr);
    ::execv(exe.c_str(), argv.data());
    std::cerr << "trading-heal-ctl: cannot run " << exe << "\n";
    return 1;
  }
  std::string query = "limit=20";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i + 1 >= args.size()) return usage("missing value after " + args[i]);
    if (args[i] == "--symbol") {
      query += "&symbol=" + url_encode(args[++i]);
    } else if (args[i] == "--action") {
      query += "&action=" + url_encode(args[++i]);
    } else if (args[i] == "--tail") {
      const std::string& n = args[++i];
      if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos) {
        return usage("--tail needs a number, got " + n);
      }
      query.replace(0, query.find('&') == std::string::npos ? query.size() : query.find('&'),
                    "limit=" + n);
    } else {
      return usage("unknown argument " + args[i]);
    }
  }
  int rc = 0;
  auto events = api_get(c, "/audit?" + query, &rc);
  if (!events) return rc;
  for (const auto& e : *events) {
    std::cout << (c.as_json ? e.dump() : th::ctl::format_audit_line(e)) << "\n";
  }
  return 0;
}

struct KeygenArgs {
  std::string name;
  std::string dir = "/etc/trading-heal/keys";
  std::optional<unsigned> uid;
  std::optional<unsigned> gid;
};

// NAME [--dir DIR] [--owner USER]; the error is the usage message.
tl::expected<KeygenArgs, std::string> parse_keygen(const std::vector<std::string>& args) {
  KeygenArgs k;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const bool has_value = i + 1 < args.size();
    if (args[i] == "--dir" && has_value) {
      k.dir = args[++i];
    } else if (args[i] == "--owner" && has_value) {
      const std::string& user = args[++i];
      auto u = th::common::uid_of(user);
      if (!u) return tl::unexpected("--owner " + user + ": " + u.error());
      k.uid = *u;
      std::vector<char> buf(16384);
      passwd pw{};
      passwd* found = nullptr;
      if (::getpwuid_r(*u, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
        k.gid = pw.pw_gid;
      }
    } else if (args[i] == "--dir" || args[i] == "--owner") {
      return tl::unexpected("missing value after " + args[i]);
    } else if (k.name.empty() && args[i].rfind('-', 0) != 0) {
      k.name = args[i];
    } else {
      return tl::unexpected("unknown argument " + args[i]);
    }
  }
  if (k.name.empty())
    return tl::unexpected(
        std::string("keygen needs a NAME (the host or component the key is for)"));
  return k;
}

// settings: the settings table; needs no deployment.
int cmd_settings(const Ctx& c, const std::vector<std::string>& args) {
  const bool markdown = !args.empty() && args[0] == "--markdown";
  if (!args.empty() && !markdown) return usage("unknown argument " + args[0]);
  if (markdown) {
    std::cout << th::common::settings_markdown();
    return 0;
  }
  json out = json::array();
  for (const auto& d : th::common::setting_docs()) {
    if (c.as_json) {
      out.push_back({{"name", d.name},
                     {"default", d.default_text},
                     {"derived", d.derived},
                     {"read_by", th::common::readers_text(d.readers)},
                     {"help", d.help}});
      continue;
    }
    std::cout << d.name << "=" << d.default_text << "  (" << th::common::readers_text(d.readers)
              << ")\n    " << d.help << "\n";
  }
  if (c.as_json) std::cout << out.dump() << "\n";
  return 0;
}

// keygen: a CURVE key pair; needs no deployment.
int cmd_keygen(const Ctx& c, const std::vector<std::string>& args) {
  auto k = parse_keygen(args);
  if (!k) return usage(k.error());
  std::error_code ec;
  std::filesystem::create_directories(k->dir, ec);
  if (ec) {
    std::cerr << "trading-heal-ctl: cannot create " << k->dir << ": " << ec.message() << "\n";
    return 1;
  }
  auto w = th::common::write_key_files(k->dir, k->name, k->uid, k->gid);
  if (!w) {
    std::cerr << "trading-heal-ctl: keygen: " << w.error() << "\n";
    return 1;
  }
  if (c.as_json) {
    std::cout << json{{"name", k->name},
                      {"secret_key_file", w->secret_path},
                      {"public_key_file", w->public_path},
                      {"public_key", w->public_z85}}
                     .dump()
              << "\n";
  } else {
    std::cout << "secret key: " << w->secret_path << " (0600; TRADING_HEAL_CURVE_SECRET_KEY_FILE)\n"
              << "public key: " << w->public_path << " " << w->public_z85
              << " (copy it to the other side's TRADING_HEAL_HOSTS_DIR as " << k->name << ".pub)\n";
  }
  return 0;
}

}  // namespace

int run_main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  Ctx c;
  std::optional<std::string> instance;
  bool user = false;
  // --json, --instance NAME and --user may come before or after the command.
  for (std::size_t i = 0; i < args.size();) {
    if (args[i] == "-h" || args[i] == "--help") {
      std::cout << kUsage << th::common::settings_help(th::common::kCtl);
      return 0;
    }
    if (args[i] == "--json") {
      c.as_json = true;
    } else if (args[i] == "--user") {
      user = true;
    } else if (args[i] == "--instance") {
      if (i + 1 >= args.size()) return usage("--instance needs a name");
      instance = args[i + 1];
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
    } else if (i == 0 && args[i].rfind('-', 0) == 0) {
      return usage("unknown option " + args[i]);
    } else {
      ++i;
      continue;
    }
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
  }
  if (args.empty()) return usage("a COMMAND is needed");
  if (args[0] == "keygen") return cmd_keygen(c, {args.begin() + 1, args.end()});
  if (args[0] == "settings") return cmd_settings(c, {args.begin() + 1, args.end()});
  const auto process = th::common::process_env();
  auto inst =
      th::common::find_instance(instance, user, process, th::common::InstanceDirs::from(process));
  if (!inst) {
    std::cerr << "trading-heal-ctl: " << inst.error() << "\n";
    return th::common::kExitConfig;
  }
  c.where = inst->describe();
  auto cfg = th::common::load_config(inst->env);
  if (!cfg) {
    std::cerr << "trading-heal-ctl: configuration error (" << c.where
              << "): " << cfg.error().to_string() << "\n";
    return th::common::kExitConfig;
  }
  c.cfg = std::move(*cfg);
  const std::string verb = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (verb == "status") return cmd_status(c);
  if (verb == "pause") return cmd_pause_resume(c, true, rest);
  if (verb == "resume") return cmd_pause_resume(c, false, rest);
  if (verb == "diagnose") return cmd_diagnose(c, rest);
  if (verb == "audit") return cmd_audit(c, rest, argv[0]);
  return usage("unknown command " + verb);
}

int main(int argc, char** argv) {
  return trading_heal::common::guarded_main("trading-heal-ctl",
                                            [&] { return run_main(argc, argv); });
}
