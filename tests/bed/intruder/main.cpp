// trading-heal-intruder: a hostile local process for the system tests (never deployed). It speaks
// the real protocol to a daemon's socket, under whatever user it is started as (runuser -u), and
// says whether anyone answered. A refused peer never completes its handshake, so "no answer" is
// what a guarded socket gives a user that may not speak there.
//
//   trading-heal-intruder send ENDPOINT KIND AGENT     KIND: pause | diagnosis | health | event
//   trading-heal-intruder publish ENDPOINT AGENT SECONDS
//
// send: connects a DEALER, sends one message of KIND (its envelope claims the daemon that
// normally sends it), waits 3 s for an ack. Prints "answered ok=true|false detail=..." (exit 0)
// or "no answer" (exit 3).
// publish: binds a PUB at ENDPOINT (taking the probe's place) and publishes a DOWN health report
// for AGENT every 100 ms for SECONDS. Prints "bound" or "cannot bind: ..." (exit 4).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/proto/messages.hpp"

namespace th = trading_heal;
using namespace std::chrono_literals;

namespace {

constexpr const char* kUsage =
    "usage: trading-heal-intruder send ENDPOINT pause|diagnosis|health|event AGENT\n"
    "       trading-heal-intruder publish ENDPOINT AGENT SECONDS\n";

th::proto::HealthReport down(const std::string& agent) {
  th::proto::HealthReport r;
  r.agent = agent;
  r.unit = "crypto-agent@" + agent + ".service";
  r.verdict = th::proto::Verdict::kDown;
  r.consecutive_failures = 99;
  r.active_state = "failed";
  return r;
}

int send(const std::string& endpoint, const std::string& kind, const std::string& agent) {
  th::proto::Body body;
  std::string claims;
  if (kind == "pause") {
    th::proto::Command c;
    c.verb = th::proto::CommandVerb::kPause;
    c.agent = agent;
    c.reason = "intruder";
    body = c;
    claims = "ctl";
  } else if (kind == "diagnosis") {
    th::proto::Diagnosis d;
    d.agent = agent;
    d.cause = "intruder: restart it now";
    d.source = "llm";
    body = d;
    claims = "diagnoser";
  } else if (kind == "health") {
    body = down(agent);
    claims = "probe";
  } else if (kind == "event") {
    th::proto::Event e;
    e.action = "restart";
    e.symbol = agent;
    e.success = true;
    e.detail = "intruder: forged record";
    body = e;
    claims = "actuator";
  } else {
    std::cerr << kUsage;
    return 64;
  }
  zmq::context_t ctx;
  auto s = th::common::make_socket(ctx, zmq::socket_type::dealer, {.linger_ms = 0});
  if (auto r = th::common::connect_endpoint(s, endpoint); !r) {
    std::cout << "cannot connect: " << r.error() << "\n";
    return 4;
  }
  th::common::SystemClock clock;
  th::common::Stamper stamper(claims, clock);
  th::common::send_message(s, stamper.stamp(body), zmq::send_flags::dontwait);
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  th::proto::RejectCounter rejects;
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < deadline) {
    zmq::poll(&item, 1, 100ms);
    zmq::message_t frame;
    if (!s.recv(frame, zmq::recv_flags::dontwait)) continue;
    auto reply = th::common::decode_frame(frame, rejects);
    if (!reply) continue;
    if (const auto* ack = std::get_if<th::proto::Ack>(&reply->body)) {
      std::cout << "answered ok=" << (ack->ok ? "true" : "false") << " detail=" << ack->detail
                << "\n";
      return 0;
    }
  }
  std::cout << "no answer\n";
  return 3;
}

int publish(const std::string& endpoint, const std::string& agent, double seconds) {
  zmq::context_t ctx;
  auto s = th::common::make_socket(ctx, zmq::socket_type::pub, {.linger_ms = 0});
  if (auto r = th::common::bind_endpoint(s, endpoint, 0666); !r) {
    std::cout << "cannot bind: " << r.error() << "\n";
    return 4;
  }
  std::cout << "bound\n" << std::flush;
  th::common::SystemClock clock;
  th::common::Stamper stamper("probe", clock);
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    th::common::send_message(s, stamper.stamp(down(agent)), zmq::send_flags::dontwait);
    std::this_thread::sleep_for(100ms);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string verb = argc > 1 ? argv[1] : "";
  if (verb == "--help" || verb == "-h") {
    std::cout << kUsage;
    return 0;
  }
  if (verb == "send" && argc == 5) return send(argv[2], argv[3], argv[4]);
  if (verb == "publish" && argc == 5) {
    char* end = nullptr;
    const double secs = std::strtod(argv[4], &end);
    if (end == argv[4] || *end != '\0' || !(secs > 0 && secs <= 600)) {
      std::cerr << "trading-heal-intruder: SECONDS must be a number in (0, 600], got " << argv[4]
                << "\n";
      return 64;
    }
    return publish(argv[2], argv[3], secs);
  }
  std::cerr << kUsage;
  return 64;
}
