// Many hosts, the model in the centre: a host's diagnoser asks the centre's diagnoser for one
// completion of a prompt it has built from its own journal, already redacted (raw lines never
// leave the host), and gets the model's text back to validate itself. The path: the host's
// diagnoser (DEALER) -> its probe's model relay (ipc) -> the centre's analysis endpoint (tcp,
// CURVE; the exporter) -> the centre's diagnoser's model endpoint (ipc). See PROTOCOL.md
// "The model in the centre".
//
// Frames: the routing envelope (the ROUTERs' identities), an empty delimiter, then the body; the
// centre's exporter puts the sender's host (bound to its key, never what it says) as one frame
// between the delimiter and the body. Bodies are one JSON object each (UTF-8), not msgpack: a
// request/reply that never enters the audit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace trading_heal::proto {

struct ModelRequest {
  std::uint64_t id = 0;  // the asker's, echoed in the reply
  std::string system;
  std::string user;
  std::uint32_t timeout_ms = 0;  // how long the asker waits (the centre may give up sooner)
};

struct ModelReply {
  std::uint64_t id = 0;
  bool ok = false;
  std::string content;  // ok: the model's text, untrusted (the host validates it)
  std::string model;    // ok: the model that answered
  // Not ok: one of the LLM error reasons (timeout, refused, http_500, ...) or, on the way there,
  // `unreachable` (the next hop has no link) or `busy` (the centre's queue is full).
  std::string reason;
  std::string detail;
  double latency_seconds = 0;  // the centre's model call
};

std::string encode(const ModelRequest& r);
std::string encode(const ModelReply& r);
// nullopt for anything that is not such an object (wrong kind, missing or mistyped fields,
// not JSON); never throws.
std::optional<ModelRequest> decode_model_request(const std::string& text);
std::optional<ModelReply> decode_model_reply(const std::string& text);

// A reply that is not an answer (ok false).
ModelReply model_failure(std::uint64_t id, std::string reason, std::string detail);

// The reply a hop sends in place of the centre's when it cannot pass the request on: the id is
// the request's when it can be read (0 otherwise, which no asker waits for).
std::string unanswered_reply(const std::string& request_text, const std::string& reason,
                             const std::string& detail);

}  // namespace trading_heal::proto
