// Acknowledged delivery of records (audit events, diagnoses) that must arrive exactly once.
//
// Sender: every record is appended (fsync) to an on-disk Outbox before it is sent over a DEALER
// socket; it leaves the outbox only when the receiver acknowledges it. Unacknowledged records
// are resent after `resend_after`, and after a restart of the sender (they keep their original
// envelope, so their identity (source, boot_id, seq) is unchanged).
// Receiver: a ROUTER socket; it acknowledges a record only once it is durable (exporter) or
// handled (actuator), drops duplicates and refuses records that overtook a lost one. Delivery is at
// least once on the wire and exactly once in effect. See proto/PROTOCOL.md "Reliable channels".
//
// None of these classes is thread-safe: each is owned by its daemon's loop thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <tl/expected.hpp>
#include <zmq.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/proto/codec.hpp"

namespace trading_heal::common {

class Outbox {
 public:
  // Opens or creates the outbox file; records pending from earlier runs are loaded. A torn last
  // record (crash mid-write) is cut off and reported in `recovered_note()`.
  static tl::expected<std::unique_ptr<Outbox>, std::string> open(const std::string& path);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Durable (written and fsync'ed) when it returns success.
  tl::expected<void, std::string> append(const proto::Message& msg);
  // Drops every pending record of (source, boot_id) with seq <= `seq`. Returns how many.
  std::size_t ack(const std::string& source, const std::string& boot_id, std::uint64_t seq);
  const std::deque<proto::Message>& pending() const { return pending_; }
  const std::string& recovered_note() const { return note_; }
  // Highest seq among the records this outbox has held, 0 if none.
  std::uint64_t max_seq() const { return max_seq_; }

 private:
  Outbox(std::string path, int fd);
  tl::expected<void, std::string> compact();
  std::string path_;
  int fd_ = -1;
  std::deque<proto::Message> pending_;
  std::uint64_t file_records_ = 0;  // records in the file, acknowledged or not
  std::uint64_t max_seq_ = 0;
  std::string note_;
};

class ReliableSender {
 public:
  // `prepare` runs on the socket before it connects (a peer guard's ZAP domain).
  ReliableSender(zmq::context_t& ctx, const std::string& endpoint, Outbox& outbox, Stamper& stamper,
                 std::chrono::milliseconds resend_after = std::chrono::seconds(2),
                 std::size_t window = 256, const std::function<void(zmq::socket_t&)>& prepare = {});
  // Stamps, persists and sends a record. Fails only if the outbox cannot be written; the seq
  // is then given back, so `stamper` must be this sender's own (one stamper per channel).
  tl::expected<proto::Message, std::string> send(proto::Body body, MonoTime now);
  // Persists and sends a record stamped by another sender, unchanged (a relay: its identity
  // (source, boot_id, seq) stays the original sender's). Fails only if the outbox cannot be
  // written.
  tl::expected<void, std::string> forward(const proto::Message& msg, MonoTime now);
  zmq::socket_t& socket() { return socket_; }
  // Reads acknowledgements (call when the socket is readable).
  void on_readable(MonoTime now);
  // Sends what is due (first send of queued records, resends); returns the next deadline.
  MonoTime on_tick(MonoTime now);
  std::size_t pending() const { return outbox_.pending().size(); }
  std::uint64_t acked() const { return acked_; }
  std::uint64_t resent() const { return resent_; }
  const proto::RejectCounter& rejects() const { return rejects_; }

 private:
  void rewind(MonoTime now);
  zmq::socket_t socket_;
  Outbox& outbox_;
  Stamper& stamper_;
  std::chrono::milliseconds resend_after_;
  std::size_t window_;
  std::size_t sent_ = 0;  // pending records at the front already sent since last resend
  MonoTime last_progress_{};
  std::optional<MonoTime> rewind_at_;  // a refusal asks to resend from the oldest record
  std::uint64_t acked_ = 0;
  std::uint64_t resent_ = 0;
  proto::RejectCounter rejects_;
};

// Remembers the highest sequence accepted per (source, boot_id). Records of one sender boot
// are accepted strictly in order (seq == last + 1, or seq 1 for a boot not seen yet), so a
// record that overtook a lost one (a DEALER reconnecting drops what was in flight) is refused
// and resent later instead of making the lost one look like a duplicate. The one exception is
// a record the sender marks `first_held`: it holds nothing earlier of that boot (the earlier
// ones were acknowledged to a receiver whose state was lost, or never stored), so waiting for
// them would wait forever; it is accepted and the sequences skipped before it count as a gap.
class SeqTracker {
 public:
  enum class Verdict { kNew, kDuplicate, kOutOfOrder };
  Verdict classify(const std::string& source, const std::string& boot_id, std::uint64_t seq,
                   bool first_held) const;
  // Records an accepted (kNew) sequence; adds to gaps() when sequences were skipped.
  void record(const std::string& source, const std::string& boot_id, std::uint64_t seq);
  std::uint64_t gaps() const { return gaps_; }
  std::size_t size() const { return last_.size(); }
  // Persistence as JSON text. Keeps at most kBootsPerSource boots per source (the newest).
  std::string to_json() const;
  static tl::expected<SeqTracker, std::string> from_json(const std::string& text);
  static constexpr std::size_t kBootsPerSource = 16;
  // At most this many (source, boot) pairs in all: 64 sources' worth.
  static constexpr std::size_t kMaxEntries = 64 * kBootsPerSource;

 private:
  struct Entry {
    std::uint64_t seq = 0;
    std::uint64_t order = 0;  // when the boot was first seen, for pruning
  };
  std::map<std::string, Entry> last_;  // key: source + '|' + boot_id
  std::uint64_t gaps_ = 0;
  std::uint64_t next_order_ = 0;
};

// The receiving side of a reliable channel: a ROUTER socket plus the SeqTracker.
class ReliableReceiver {
 public:
  struct Delivery {
    std::string peer;  // ROUTER routing id
    proto::Message msg;
    std::string user_id;  // the connection's ZAP User-Id (host_of_peer: the sender's host)
    // The sender as the SeqTracker knows it: its source, or "HOST/source" for a sender of
    // another host (scope_by_host), so that many hosts' actuators never share an entry.
    std::string tracker_source;
  };
  // Binds a ROUTER at `endpoint`; throws std::runtime_error naming it when that fails (startup).
  // `prepare` runs on the socket before it binds (a peer guard's ZAP domain); `clock` stamps the
  // acknowledgements.
  ReliableReceiver(zmq::context_t& ctx, const std::string& endpoint, SeqTracker& tracker,
                   proto::Limits limits = {}, mode_t ipc_mode = 0666,
                   const std::function<void(zmq::socket_t&)>& prepare = {},
                   const Clock& clock = process_clock());
  zmq::socket_t& socket() { return socket_; }
  // Records of senders bound to another host's key are tracked as "HOST/source" (see Delivery).
  void scope_by_host(std::string local_host) { local_host_ = std::move(local_host); }
  // The tracker's name for `source` of a sender with ZAP User-Id `user_id`.
  std::string tracker_source(const std::string& source, const std::string& user_id) const;
  // The next new, in-order record if one is available (non-blocking). Duplicates are
  // acknowledged again and out-of-order records refused here; malformed frames are counted.
  std::optional<Delivery> receive();
  // The record is safe (stored / handled): record its seq, then acknowledge it.
  void accept(const Delivery& d);
  // The record could not be stored now (e.g. disk full): the sender keeps it and retries.
  void refuse(const Delivery& d, const std::string& detail);
  const proto::RejectCounter& rejects() const { return rejects_; }
  std::uint64_t duplicates() const { return duplicates_; }
  std::uint64_t out_of_order() const { return out_of_order_; }

 private:
  void reply(const std::string& peer, const proto::Message& of, bool ok, const std::string& detail);
  zmq::socket_t socket_;
  SeqTracker& tracker_;
  proto::Limits limits_;
  proto::RejectCounter rejects_;
  Stamper acks_;
  std::string local_host_;  // empty: not scoped by host
  std::uint64_t duplicates_ = 0;
  std::uint64_t out_of_order_ = 0;
};

}  // namespace trading_heal::common
