// The durable audit file $TRADING_HEAL_DATA_DIR/trading_heal_audit.jsonl: append-only, one
// event a line, hash-chained (audit_format.hpp), fsync'ed before anything is acknowledged.
//
// Group commit: the loop stages the lines of the events it has received, then commit() writes
// them with one write and one fsync. If writing or fsync fails (disk full, I/O error) the file is
// cut back to its last committed size and the staged lines are dropped: the caller refuses the
// events, the senders keep them and resend, and they are staged again. After a failed fsync the
// file is also reopened — the kernel may have dropped the dirty pages, so the data is treated as
// lost and rewritten rather than fsync retried ("fsyncgate").
//
// Rotation: when a commit would take the file past max_bytes, it becomes .1 (.1 becomes .2, ...,
// at most `keep` rotated files) and a new file starts; the chain continues across files.
// reopen() (SIGHUP) reopens the path, for logrotate's rename-then-signal.
//
// Thread-safety: everything is for the loop thread, except open_for_read(), which the HTTP
// thread may call at any time (a mutex orders it with rotation, so a reader never sees a file
// twice or misses one; it reads through its own descriptors afterwards).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "trading_heal/proto/messages.hpp"

namespace trading_heal::exporter {

inline constexpr const char* kAuditFileName = "trading_heal_audit.jsonl";

// An open file descriptor closed on destruction.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_;
};

class AuditLog {
 public:
  struct Options {
    std::string path;                       // the current file
    std::uint64_t max_bytes = 64ULL << 20;  // rotate past this
    int keep = 5;                           // rotated files kept (.1 .. .keep)
  };
  // Opens (creating) the file; a torn last line is cut back to the last newline and described
  // in recovered_note(). The chain resumes from the last line (of the current file, else .1).
  static tl::expected<std::unique_ptr<AuditLog>, std::string> open(const Options& opts);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Formats an Event message as the next line of the chain and stages it. Returns the line.
  // `host`: the host the record came from (the line's `host`).
  const std::string& stage(const proto::Message& msg, const std::string& host = {});
  std::size_t staged() const { return staged_count_; }
  // Writes and fsyncs everything staged. On failure nothing staged remains in the file.
  tl::expected<void, std::string> commit();
  // Reopens the path (SIGHUP); the torn-line check runs again on what it finds.
  tl::expected<void, std::string> reopen();
  // Called before a rotation moves the current file away (the daemon persists its state).
  void set_before_rotate(std::function<void()> fn) { before_rotate_ = std::move(fn); }

  // Read-only descriptors of every audit file, newest first (current, .1, .2, ...).
  // Thread-safe.
  std::vector<Fd> open_for_read() const;
  // Calls `fn` for each complete line of the current file and then of .1, oldest first in each
  // (startup only: rebuilding the sequence state).
  void scan_recent(const std::function<void(std::string_view)>& fn) const;

  const std::string& recovered_note() const { return note_; }
  const std::string& last_hash() const { return last_hash_; }
  std::uint64_t size() const { return size_; }
  std::uint64_t rotations() const { return rotations_; }
  const std::string& path() const { return opts_.path; }
  std::string rotated_path(int n) const { return opts_.path + "." + std::to_string(n); }

 private:
  explicit AuditLog(Options opts) : opts_(std::move(opts)) {}
  tl::expected<void, std::string> open_current();
  tl::expected<void, std::string> rotate();
  void drop_staged();

  Options opts_;
  Fd fd_;
  std::uint64_t size_ = 0;   // committed bytes of the current file
  std::string last_hash_;    // hash of the last committed line
  std::string staged_;       // lines (with newlines) not yet committed
  std::string staged_hash_;  // hash of the last staged line
  std::string last_line_;
  std::size_t staged_count_ = 0;
  std::uint64_t rotations_ = 0;
  std::string note_;
  std::function<void()> before_rotate_;
  mutable std::mutex files_mutex_;  // rotation vs open_for_read
};

// Reads complete lines of `fd` backwards (newest first) until `fn` returns false.
void read_lines_backwards(int fd, const std::function<bool(std::string_view)>& fn);
// Reads complete lines of `fd` forwards until `fn` returns false.
void read_lines_forwards(int fd, const std::function<bool(std::string_view)>& fn);

}  // namespace trading_heal::exporter
