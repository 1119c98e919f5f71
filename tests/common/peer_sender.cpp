// Test helper for peer_guard_test: becomes UID (setgid/setuid), connects a DEALER to ENDPOINT and
// sends one frame, then waits a moment for it to go out. Usage: peer_sender ENDPOINT UID GID
// With `pub MS` after them: binds a PUB at ENDPOINT instead and publishes "hello" every 20 ms
// for MS milliseconds.
#include <grp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <zmq.hpp>

int main(int argc, char** argv) {
  if (argc != 4 && argc != 6) return 64;
  const gid_t gid = static_cast<gid_t>(std::atoi(argv[3]));
  const uid_t uid = static_cast<uid_t>(std::atoi(argv[2]));
  if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
    std::perror("peer_sender: cannot change user");
    return 1;
  }
  zmq::context_t ctx;
  if (argc == 6) {
    zmq::socket_t p(ctx, zmq::socket_type::pub);
    p.set(zmq::sockopt::linger, 0);
    p.bind(argv[1]);
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(std::atoi(argv[5]));
    while (std::chrono::steady_clock::now() < until) {
      p.send(zmq::str_buffer("hello"), zmq::send_flags::dontwait);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return 0;
  }
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 500);
  s.connect(argv[1]);
  s.send(zmq::str_buffer("hello"), zmq::send_flags::dontwait);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  return 0;
}
