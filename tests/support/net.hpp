// Plain loopback TCP clients for tests and benchmarks that must send what an HTTP client
// library would not (half requests, garbage, a small receive window).
#pragma once

namespace trading_heal::test {

// A blocking TCP socket connected to 127.0.0.1:port, or -1. `rcvbuf` > 0 sets SO_RCVBUF before
// the connect (a small window for the server to fill); `recv_timeout_s` > 0 sets SO_RCVTIMEO.
int connect_loopback(int port, int rcvbuf = 0, int recv_timeout_s = 0);

}  // namespace trading_heal::test
