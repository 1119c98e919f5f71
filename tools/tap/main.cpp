// trading-heal-tap: prints every message published by the components of one configuration as
// one JSON line each (envelope and payload), for operators, scripts and the demo.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "trading_heal/common/config.hpp"
#include "trading_heal/common/guarded_main.hpp"
#include "trading_heal/common/instance.hpp"
#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/settings.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/proto/json.hpp"

namespace th = trading_heal;

namespace {

constexpr const char* kUsage = R"(usage: trading-heal-tap [--kind KIND] [--agent AGENT] [--count N]
                        [--endpoint ENDPOINT]...

Connects to every publishing endpoint of the configuration (probe, diagnoser, actuator) and
prints each message as one JSON line: envelope fields (v, kind, source, boot_id, seq, ts) next
to the payload's fields.

  --kind KIND        only messages of this kind: health, heartbeat, diagnosis, event, command, ack
                     (repeatable)
  --agent AGENT      only messages about this agent instance, e.g. BTC_USDT (repeatable)
  --count N          exit after printing N messages
  --endpoint EP      subscribe to EP instead of the configured publishers (repeatable)
  --instance NAME    the deployment (default: TRADING_HEAL_INSTANCE, else the only one
                     installed, else main)
  --user             a deployment in your user manager (deploy.sh --user)
  -h, --help         this text

Finds the deployment's sockets as its units do: its environment file
(/etc/trading-heal/NAME.env; with --user $XDG_CONFIG_HOME/trading-heal/NAME.env) over the
units' runtime directory (/run/trading-heal/NAME); variables set in the caller's environment win
(TRADING_HEAL_RUNTIME_DIR, TRADING_HEAL_HEALTH_ENDPOINT, TRADING_HEAL_DIAGNOSER_PUB_ENDPOINT,
TRADING_HEAL_ACTUATOR_PUB_ENDPOINT). Rejected (malformed) messages are counted on stderr at exit.
Exit status: 0 on SIGINT/SIGTERM or after --count, 64 on bad usage, 78 on bad configuration.
)";

struct Options {
  std::vector<std::string> kinds;
  std::vector<std::string> agents;
  std::vector<std::string> endpoints;
  long count = -1;
  std::optional<std::string> instance;
  bool user = false;
};

int usage_error(const std::string& msg) {
  std::cerr << "trading-heal-tap: " << msg << "\n(try --help)\n";
  return th::common::kExitUsage;
}

bool matches(const std::vector<std::string>& allowed, const std::string& v) {
  if (allowed.empty()) return true;
  for (const auto& a : allowed) {
    if (a == v) return true;
  }
  return false;
}

std::string agent_of(const th::proto::Body& body) {
  return std::visit(
      [](const auto& b) -> std::string {
        if constexpr (requires { b.agent; }) {
          return b.agent;
        } else {
          return {};
        }
      },
      body);
}

// The command line into `opt`; an exit status when there is nothing more to do.
std::optional<int> parse_args(const std::vector<std::string>& args, Options& opt) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    std::string v;
    if (a == "-h" || a == "--help") {
      std::cout << kUsage << th::common::settings_help(th::common::kCtl);
      return 0;
    } else if (a == "--kind" && value(v)) {
      if (!th::proto::kind_from_string(v)) return usage_error("unknown --kind " + v);
      opt.kinds.push_back(v);
    } else if (a == "--agent" && value(v)) {
      opt.agents.push_back(v);
    } else if (a == "--endpoint" && value(v)) {
      opt.endpoints.push_back(v);
    } else if (a == "--instance" && value(v)) {
      opt.instance = v;
    } else if (a == "--user") {
      opt.user = true;
    } else if (a == "--count" && value(v)) {
      char* end = nullptr;
      opt.count = std::strtol(v.c_str(), &end, 10);
      if (*end != '\0' || opt.count <= 0)
        return usage_error("--count needs a positive number, got " + v);
    } else {
      return usage_error("unknown or incomplete argument " + a);
    }
  }
  return std::nullopt;
}

// Prints what the endpoints publish until a signal or --count.
int tap(const Options& opt, const th::common::Config& cfg, const std::string& where) {
  th::common::SignalFd signals({SIGTERM, SIGINT});
  zmq::context_t ctx;
  auto sub = th::common::make_socket(
      ctx, zmq::socket_type::sub,
      {.max_msg_size = static_cast<std::int64_t>(cfg.max_message_bytes), .rcvhwm = 10000});
  sub.set(zmq::sockopt::subscribe, "");
  for (const auto& ep : opt.endpoints) {
    if (ep.rfind("ipc://", 0) == 0 && ::access(ep.c_str() + 6, F_OK) != 0) {
      std::cerr << "trading-heal-tap: warning: " << ep.substr(6) << " does not exist yet (" << where
                << "): waiting for it\n";
    }
    if (auto r = th::common::connect_endpoint(sub, ep); !r) {
      std::cerr << "trading-heal-tap: " << r.error() << "\n";
      return th::common::kExitConfig;
    }
  }
  th::proto::RejectCounter rejects;
  const th::proto::Limits limits{.max_bytes = cfg.max_message_bytes};
  long printed = 0;
  th::common::Loop loop(signals);
  loop.on_readable(sub, [&] {
    zmq::message_t frame;
    while (sub.recv(frame, zmq::recv_flags::dontwait)) {
      auto msg = th::common::decode_frame(frame, rejects, limits);
      if (!msg) continue;
      if (!matches(opt.kinds, std::string(th::proto::to_string(msg->env.kind)))) continue;
      if (!opt.agents.empty() && !matches(opt.agents, agent_of(msg->body))) continue;
      std::cout << th::proto::to_json_line(th::proto::to_json(*msg)) << std::endl;
      if (opt.count > 0 && ++printed >= opt.count) {
        loop.stop();
        return;
      }
    }
  });
  loop.run();
  if (rejects.total() > 0) {
    std::cerr << "trading-heal-tap: rejected " << rejects.total() << " malformed messages\n";
  }
  return 0;
}

}  // namespace

int run_main(int argc, char** argv) {
  Options opt;
  if (auto code = parse_args({argv + 1, argv + argc}, opt)) return *code;
  const auto process = th::common::process_env();
  auto inst = th::common::find_instance(opt.instance, opt.user, process,
                                        th::common::InstanceDirs::from(process));
  if (!inst) {
    std::cerr << "trading-heal-tap: " << inst.error() << "\n";
    return th::common::kExitConfig;
  }
  auto cfg = th::common::load_config(inst->env);
  if (!cfg) {
    std::cerr << "trading-heal-tap: configuration error (" << inst->describe()
              << "): " << cfg.error().to_string() << "\n";
    return th::common::kExitConfig;
  }
  if (opt.endpoints.empty()) opt.endpoints = cfg->endpoints.publishers();
  return tap(opt, *cfg, inst->describe());
}

int main(int argc, char** argv) {
  return trading_heal::common::guarded_main("trading-heal-tap",
                                            [&] { return run_main(argc, argv); });
}
