#include "trading_heal/common/reliable.hpp"

#include "trading_heal/common/curve.hpp"
#include "trading_heal/common/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace trading_heal::common {
namespace {

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string frame_record(const proto::Message& msg) {
  const std::string bytes = proto::encode(msg);
  const auto n = static_cast<std::uint32_t>(bytes.size());
  std::string rec(4, '\0');
  for (int i = 0; i < 4; ++i)
    rec[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return rec + bytes;
}

}  // namespace

// ---- Outbox ---------------------------------------------------------------------------------
// File format: records of [u32 little-endian length][msgpack message], appended. An
// acknowledgement is appended as an Ack message (not fsync'ed: losing one only means a resend
// that the receiver drops as a duplicate). The file is truncated when nothing is pending and
// compacted when acknowledged records dominate it.

Outbox::Outbox(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

Outbox::~Outbox() {
  if (fd_ >= 0) ::close(fd_);
}

tl::expected<std::unique_ptr<Outbox>, std::string> Outbox::open(const std::string& path) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return tl::unexpected(errno_text("open outbox " + path));
  std::unique_ptr<Outbox> box(new Outbox(path, fd));
  std::string data;
  char buf[65536];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) data.append(buf, static_cast<std::size_t>(n));
  if (n < 0) return tl::unexpected(errno_text("read outbox " + path));
  std::size_t off = 0;
  // Records are written in order, so the pending set is the file's records.
  while (off + 4 <= data.size()) {
    std::uint32_t len = 0;
    for (int i = 0; i < 4; ++i) {
      len |= static_cast<std::uint32_t>(
                 static_cast<unsigned char>(data[off + static_cast<std::size_t>(i)]))
             << (8 * i);
    }
    if (off + 4 + len > data.size()) break;
    auto msg = proto::decode(std::string_view(data).substr(off + 4, len));
    if (!msg) break;
    if (const auto* a = std::get_if<proto::Ack>(&msg->body)) {
      std::erase_if(box->pending_, [&](const proto::Message& m) {
        return m.env.source == a->of_source && m.env.boot_id == a->of_boot_id &&
               m.env.seq <= a->of_seq;
      });
    } else {
      box->max_seq_ = std::max(box->max_seq_, msg->env.seq);
      box->pending_.push_back(std::move(*msg));
    }
    ++box->file_records_;
    off += 4 + len;
  }
  if (off != data.size()) {
    box->note_ = "outbox " + path + ": cut " + std::to_string(data.size() - off) +
                 " bytes of a torn or corrupt record at offset " + std::to_string(off);
    if (::ftruncate(fd, static_cast<off_t>(off)) != 0 || ::fsync(fd) != 0) {
      return tl::unexpected(errno_text("truncate outbox " + path));
    }
  }
  ::lseek(fd, 0, SEEK_END);
  return box;
}

tl::expected<void, std::string> Outbox::append(const proto::Message& msg) {
  const std::string rec = frame_record(msg);
  const off_t before = ::lseek(fd_, 0, SEEK_END);
  if (!write_all(fd_, rec.data(), rec.size()) || ::fsync(fd_) != 0) {
    // A failed write or fsync leaves the tail unknown: cut it back so the file stays parseable.
    std::string err = errno_text("append to outbox " + path_);
    if (before >= 0 && ::ftruncate(fd_, before) == 0) ::fsync(fd_);
    return tl::unexpected(err);
  }
  pending_.push_back(msg);
  ++file_records_;
  max_seq_ = std::max(max_seq_, msg.env.seq);
  return {};
}

std::size_t Outbox::ack(const std::string& source, const std::string& boot_id, std::uint64_t seq) {
  const auto before = pending_.size();
  std::erase_if(pending_, [&](const proto::Message& m) {
    return m.env.source == source && m.env.boot_id == boot_id && m.env.seq <= seq;
  });
  const auto removed = before - pending_.size();
  if (removed == 0) return 0;
  if (pending_.empty()) {
    if (::ftruncate(fd_, 0) == 0) {
      ::fsync(fd_);
      file_records_ = 0;
    }
  } else if (file_records_ > 4 * pending_.size() + 64) {
    (void)compact();  // best effort: a failure only leaves acknowledged records to be resent
  } else {
    proto::Ack marker{source, boot_id, seq, true, {}};
    const std::string rec = frame_record(proto::make_message("outbox", "", 0, 0, marker));
    if (write_all(fd_, rec.data(), rec.size())) ++file_records_;
  }
  return removed;
}

tl::expected<void, std::string> Outbox::compact() {
  std::string records;
  for (const auto& m : pending_) records += frame_record(m);
  if (auto r = replace_file(path_, records, 0640); !r) return r;
  ::close(fd_);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) return tl::unexpected(errno_text("reopen " + path_));
  ::lseek(fd_, 0, SEEK_END);
  file_records_ = pending_.size();
  return {};
}

// ---- ReliableSender -------------------------------------------------------------------------

namespace {

// Whether pending[i] is the oldest record of its boot the sender holds. The records of one
// boot are contiguous in the outbox (earlier runs' boots first, then this one's), so it is when
// the record before it belongs to another boot.
bool oldest_of_its_boot(const std::deque<proto::Message>& pending, std::size_t i) {
  return i == 0 || pending[i - 1].env.source != pending[i].env.source ||
         pending[i - 1].env.boot_id != pending[i].env.boot_id;
}

}  // namespace

ReliableSender::ReliableSender(zmq::context_t& ctx, const std::string& endpoint, Outbox& outbox,
                               Stamper& stamper, std::chrono::milliseconds resend_after,
                               std::size_t window,
                               const std::function<void(zmq::socket_t&)>& prepare)
    : socket_(make_socket(ctx, zmq::socket_type::dealer)),
      outbox_(outbox),
      stamper_(stamper),
      resend_after_(resend_after),
      window_(window) {
  if (prepare) prepare(socket_);
  if (auto r = connect_endpoint(socket_, endpoint); !r) throw std::runtime_error(r.error());
  // Records kept from an earlier run are sent first, in their original order.
  if (!outbox_.pending().empty()) rewind_at_ = MonoTime{};
}

tl::expected<proto::Message, std::string> ReliableSender::send(proto::Body body, MonoTime now) {
  proto::Message msg = stamper_.stamp(std::move(body));
  if (auto r = outbox_.append(msg); !r) {
    // Not stored, so never sent: give the seq back, or the receiver would wait for it.
    stamper_.set_next_seq(msg.env.seq);
    return tl::unexpected(r.error());
  }
  (void)on_tick(now);
  return msg;
}

tl::expected<void, std::string> ReliableSender::forward(const proto::Message& msg, MonoTime now) {
  proto::Message copy = msg;
  copy.env.first_held = false;  // set at send time, from what this outbox holds
  if (auto r = outbox_.append(copy); !r) return tl::unexpected(r.error());
  (void)on_tick(now);
  return {};
}

void ReliableSender::rewind(MonoTime now) {
  if (sent_ > 0) resent_ += sent_;
  sent_ = 0;
  last_progress_ = now;
  rewind_at_.reset();
}

void ReliableSender::on_readable(MonoTime now) {
  while (true) {
    zmq::message_t frame;
    try {
      if (!socket_.recv(frame, zmq::recv_flags::dontwait)) break;
    } catch (const zmq::error_t&) {
      break;
    }
    auto msg = decode_frame(frame, rejects_);
    if (!msg) continue;
    const auto* ack = std::get_if<proto::Ack>(&msg->body);
    if (ack == nullptr) {
      rejects_.add(proto::Reject::kUnknownKind);
      continue;
    }
    if (!ack->ok) {
      // Out of order: resend from the oldest at once. Not stored (e.g. disk full): later.
      auto when = ack->detail == "out_of_order" ? now : now + resend_after_;
      if (!rewind_at_ || when < *rewind_at_) rewind_at_ = when;
      continue;
    }
    const auto removed = outbox_.ack(ack->of_source, ack->of_boot_id, ack->of_seq);
    if (removed > 0) {
      acked_ += removed;
      sent_ -= std::min(sent_, removed);
      last_progress_ = now;
    }
  }
  (void)on_tick(now);
}

MonoTime ReliableSender::on_tick(MonoTime now) {
  if (rewind_at_ && now >= *rewind_at_) rewind(now);
  if (sent_ > 0 && now - last_progress_ >= resend_after_) rewind(now);
  const auto& pending = outbox_.pending();
  if (sent_ == 0 && !pending.empty()) last_progress_ = now;
  while (sent_ < pending.size() && sent_ < window_) {
    bool sent = false;
    if (oldest_of_its_boot(pending, sent_)) {
      proto::Message marked = pending[sent_];
      marked.env.first_held = true;
      sent = send_message(socket_, marked, zmq::send_flags::dontwait);
    } else {
      sent = send_message(socket_, pending[sent_], zmq::send_flags::dontwait);
    }
    if (!sent) break;
    ++sent_;
  }
  MonoTime next = now + std::chrono::seconds(60);
  if (!pending.empty()) next = std::min(next, last_progress_ + resend_after_);
  if (rewind_at_) next = std::min(next, *rewind_at_);
  return std::max(next, now + std::chrono::milliseconds(1));
}

// ---- SeqTracker -----------------------------------------------------------------------------

SeqTracker::Verdict SeqTracker::classify(const std::string& source, const std::string& boot_id,
                                         std::uint64_t seq, bool first_held) const {
  auto it = last_.find(source + '|' + boot_id);
  const std::uint64_t last = it == last_.end() ? 0 : it->second.seq;
  if (it != last_.end() && seq <= last) return Verdict::kDuplicate;
  if (seq == last + 1 || first_held) return Verdict::kNew;
  return Verdict::kOutOfOrder;
}

void SeqTracker::record(const std::string& source, const std::string& boot_id, std::uint64_t seq) {
  const std::string key = source + '|' + boot_id;
  auto it = last_.find(key);
  if (it == last_.end()) {
    if (seq > 1) gaps_ += seq - 1;
    last_[key] = Entry{seq, next_order_++};
    // Bound the boots remembered per source: drop the oldest.
    std::vector<std::map<std::string, Entry>::iterator> same;
    for (auto i = last_.begin(); i != last_.end(); ++i) {
      if (i->first.compare(0, source.size() + 1, source + '|') == 0) same.push_back(i);
    }
    if (same.size() > kBootsPerSource) {
      auto oldest = *std::min_element(same.begin(), same.end(), [](auto a, auto b) {
        return a->second.order < b->second.order;
      });
      last_.erase(oldest);
    }
    // And the sources: `source` is what the sender says, so a hostile one could invent many.
    // The least recently new boot goes first (the real senders' boots are recent).
    if (last_.size() > kMaxEntries) {
      last_.erase(std::min_element(last_.begin(), last_.end(), [](const auto& a, const auto& b) {
        return a.second.order < b.second.order;
      }));
    }
    return;
  }
  if (seq > it->second.seq + 1) gaps_ += seq - it->second.seq - 1;
  it->second.seq = std::max(it->second.seq, seq);
}

std::string SeqTracker::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  nlohmann::json entries = nlohmann::json::object();
  for (const auto& [k, e] : last_) entries[k] = {{"seq", e.seq}, {"order", e.order}};
  j["entries"] = std::move(entries);
  j["gaps"] = gaps_;
  return j.dump();
}

tl::expected<SeqTracker, std::string> SeqTracker::from_json(const std::string& text) {
  SeqTracker t;
  try {
    auto j = nlohmann::json::parse(text);
    t.gaps_ = j.value("gaps", std::uint64_t{0});
    for (const auto& [k, v] : j.at("entries").items()) {
      Entry e{v.at("seq").get<std::uint64_t>(), v.at("order").get<std::uint64_t>()};
      t.next_order_ = std::max(t.next_order_, e.order + 1);
      t.last_[k] = e;
    }
  } catch (const nlohmann::json::exception& e) {
    return tl::unexpected(std::string("sequence state is not valid: ") + e.what());
  }
  return t;
}

// ---- ReliableReceiver -----------------------------------------------------------------------

ReliableReceiver::ReliableReceiver(zmq::context_t& ctx, const std::string& endpoint,
                                   SeqTracker& tracker, proto::Limits limits, mode_t ipc_mode,
                                   const std::function<void(zmq::socket_t&)>& prepare,
                                   const Clock& clock)
    : socket_(
          make_socket(ctx, zmq::socket_type::router,
                      SocketOptions{.max_msg_size = static_cast<std::int64_t>(limits.max_bytes)})),
      tracker_(tracker),
      limits_(limits),
      acks_("ack", clock) {
  if (prepare) prepare(socket_);
  if (auto r = bind_endpoint(socket_, endpoint, ipc_mode); !r) throw std::runtime_error(r.error());
}

std::optional<ReliableReceiver::Delivery> ReliableReceiver::receive() {
  while (true) {
    auto in = recv_routed(socket_);
    if (!in) return std::nullopt;
    if (!in->single || in->req) {  // records are one frame after the identity: refused
      rejects_.add(proto::Reject::kMalformed);
      continue;
    }
    const zmq::message_t& frame = in->body;
    const zmq::message_t& id = in->identity;
    auto msg = decode_frame(frame, rejects_, limits_);
    if (!msg) continue;
    Delivery d{id.to_string(), std::move(*msg), user_id_of(frame), {}};
    d.tracker_source = tracker_source(d.msg.env.source, d.user_id);
    switch (tracker_.classify(d.tracker_source, d.msg.env.boot_id, d.msg.env.seq,
                              d.msg.env.first_held)) {
      case SeqTracker::Verdict::kNew:
        return d;
      case SeqTracker::Verdict::kDuplicate:
        ++duplicates_;
        reply(d.peer, d.msg, true, "duplicate");
        break;
      case SeqTracker::Verdict::kOutOfOrder:
        ++out_of_order_;
        reply(d.peer, d.msg, false, "out_of_order");
        break;
    }
  }
}

std::string ReliableReceiver::tracker_source(const std::string& source,
                                             const std::string& user_id) const {
  if (local_host_.empty()) return source;
  const std::string host = host_of_peer(user_id.c_str(), local_host_);
  return host == local_host_ ? source : host + "/" + source;
}

void ReliableReceiver::accept(const Delivery& d) {
  tracker_.record(d.tracker_source, d.msg.env.boot_id, d.msg.env.seq);
  reply(d.peer, d.msg, true, {});
}

void ReliableReceiver::refuse(const Delivery& d, const std::string& detail) {
  reply(d.peer, d.msg, false, detail);
}

void ReliableReceiver::reply(const std::string& peer, const proto::Message& of, bool ok,
                             const std::string& detail) {
  proto::Ack a{of.env.source, of.env.boot_id, of.env.seq, ok, detail};
  const std::string bytes = proto::encode(acks_.stamp(a));
  try {
    socket_.send(zmq::buffer(peer), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
    // The peer is gone; it resends after reconnecting.
  }
}

}  // namespace trading_heal::common
