#include "trading_heal/exporter/audit_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "trading_heal/common/files.hpp"
#include "trading_heal/exporter/audit_format.hpp"
#include "trading_heal/exporter/sha256.hpp"

namespace trading_heal::exporter {
namespace {

constexpr std::size_t kChunk = 1 << 20;

std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

bool pread_all(int fd, char* buf, std::size_t n, off_t off) {
  while (n > 0) {
    ssize_t r = ::pread(fd, buf, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<std::size_t>(r);
    off += r;
  }
  return true;
}

off_t file_size(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_size : 0;
}

// Offset just past the last newline of the file (0 when there is none).
off_t complete_end(int fd) {
  off_t pos = file_size(fd);
  std::string block;
  while (pos > 0) {
    const auto n = static_cast<std::size_t>(std::min<off_t>(pos, off_t{64} * 1024));
    block.resize(n);
    if (!pread_all(fd, block.data(), n, pos - static_cast<off_t>(n))) return 0;
    auto nl = block.rfind('\n');
    if (nl != std::string::npos) return pos - static_cast<off_t>(n) + static_cast<off_t>(nl) + 1;
    pos -= static_cast<off_t>(n);
  }
  return 0;
}

std::string last_line_of(int fd) {
  std::string out;
  read_lines_backwards(fd, [&](std::string_view l) {
    if (l.empty()) return true;
    out = std::string(l);
    return false;
  });
  return out;
}

}  // namespace

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void read_lines_backwards(int fd, const std::function<bool(std::string_view)>& fn) {
  off_t pos = complete_end(fd);
  std::string carry;  // the end of a line whose beginning lies in an earlier block
  std::string data;
  while (pos > 0) {
    const auto n = static_cast<std::size_t>(std::min<off_t>(pos, kChunk));
    pos -= static_cast<off_t>(n);
    data.resize(n);
    if (!pread_all(fd, data.data(), n, pos)) return;
    data += carry;
    carry.clear();
    // `data` ends with the newline of its last line.
    std::size_t e = data.size() - 1;
    while (true) {
      // memrchr (vectorised) rather than std::string::rfind (a byte loop): this scan is most
      // of the cost of an /audit query over a large file.
      const void* nl = e == 0 ? nullptr : ::memrchr(data.data(), '\n', e);
      const std::size_t s =
          nl == nullptr ? std::string::npos
                        : static_cast<std::size_t>(static_cast<const char*>(nl) - data.data());
      if (s == std::string::npos) {
        if (pos == 0) {
          fn(std::string_view(data).substr(0, e));
        } else {
          carry.assign(data, 0, e + 1);
        }
        break;
      }
      if (!fn(std::string_view(data).substr(s + 1, e - s - 1))) return;
      e = s;
    }
  }
}

void read_lines_forwards(int fd, const std::function<bool(std::string_view)>& fn) {
  const off_t end = complete_end(fd);
  off_t pos = 0;
  std::string data;
  std::string carry;
  while (pos < end) {
    const auto n = static_cast<std::size_t>(std::min<off_t>(end - pos, kChunk));
    data.resize(n);
    if (!pread_all(fd, data.data(), n, pos)) return;
    pos += static_cast<off_t>(n);
    std::string_view view(data);
    std::size_t start = 0;
    while (true) {
      auto nl = view.find('\n', start);
      if (nl == std::string_view::npos) {
        carry.append(view.substr(start));
        break;
      }
      if (!carry.empty()) {
        carry.append(view.substr(start, nl - start));
        if (!fn(carry)) return;
        carry.clear();
      } else if (!fn(view.substr(start, nl - start))) {
        return;
      }
      start = nl + 1;
    }
  }
}

tl::expected<std::unique_ptr<AuditLog>, std::string> AuditLog::open(const Options& opts) {
  std::unique_ptr<AuditLog> log(new AuditLog(opts));
  if (auto r = log->open_current(); !r) return tl::unexpected(r.error());
  return log;
}

AuditLog::~AuditLog() = default;

tl::expected<void, std::string> AuditLog::open_current() {
  std::error_code ec;
  auto dir = std::filesystem::path(opts_.path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  Fd fd(::open(opts_.path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd) return tl::unexpected(errno_text("cannot open", opts_.path));
  const off_t size = file_size(fd.get());
  const off_t end = complete_end(fd.get());
  if (end < size) {
    if (::ftruncate(fd.get(), end) != 0 || ::fsync(fd.get()) != 0) {
      return tl::unexpected(errno_text("cannot cut the torn last line of", opts_.path));
    }
    note_ = "cut a torn last line of " + std::to_string(size - end) + " bytes at offset " +
            std::to_string(end) + " of " + opts_.path;
  }
  size_ = static_cast<std::uint64_t>(end);
  std::string last = last_line_of(fd.get());
  if (last.empty() && last_hash_.empty()) {
    Fd prev(::open(rotated_path(1).c_str(), O_RDONLY | O_CLOEXEC));
    if (prev) last = last_line_of(prev.get());
  }
  if (!last.empty()) {
    last_hash_ = sha256_hex(last);
  } else if (last_hash_.empty()) {
    last_hash_ = kGenesisHash;
  }
  fd_ = std::move(fd);
  return {};
}

const std::string& AuditLog::stage(const proto::Message& msg, const std::string& host) {
  last_line_ = format_audit_line(msg, staged_count_ == 0 ? last_hash_ : staged_hash_, host);
  staged_hash_ = sha256_hex(last_line_);
  staged_ += last_line_;
  staged_ += '\n';
  ++staged_count_;
  return last_line_;
}

void AuditLog::drop_staged() {
  staged_.clear();
  staged_hash_.clear();
  staged_count_ = 0;
}

tl::expected<void, std::string> AuditLog::commit() {
  if (staged_count_ == 0) return {};
  if (size_ > 0 && size_ + staged_.size() > opts_.max_bytes) {
    // A failed rotation is not a reason to lose events: keep appending to the current file.
    if (auto r = rotate(); !r) note_ = r.error();
  }
  std::string_view rest = staged_;
  std::string error;
  while (!rest.empty()) {
    ssize_t n = ::write(fd_.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = errno_text("cannot write", opts_.path);
      break;
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  if (error.empty() && ::fdatasync(fd_.get()) != 0) {
    error = errno_text("fsync failed on", opts_.path);
    // The kernel may have dropped the pages: cut back, reopen and write the lines again later.
    (void)::ftruncate(fd_.get(), static_cast<off_t>(size_));
    drop_staged();
    fd_ = Fd();
    if (auto r = open_current(); !r) error += "; " + r.error();
    return tl::unexpected(error);
  }
  if (!error.empty()) {
    if (::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0) {
      error += "; cannot cut back the partial write: " + std::string(std::strerror(errno));
    }
    drop_staged();
    return tl::unexpected(error);
  }
  size_ += staged_.size();
  last_hash_ = staged_hash_;
  drop_staged();
  return {};
}

tl::expected<void, std::string> AuditLog::rotate() {
  if (before_rotate_) before_rotate_();
  std::lock_guard lock(files_mutex_);
  std::error_code ec;
  for (int i = opts_.keep - 1; i >= 1; --i) {
    if (std::filesystem::exists(rotated_path(i), ec)) {
      std::filesystem::rename(rotated_path(i), rotated_path(i + 1), ec);
      if (ec) return tl::unexpected("cannot rotate " + rotated_path(i) + ": " + ec.message());
    }
  }
  if (::rename(opts_.path.c_str(), rotated_path(1).c_str()) != 0) {
    return tl::unexpected(errno_text("cannot rotate", opts_.path));
  }
  Fd fd(::open(opts_.path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd) {
    // Keep writing to the rotated file rather than to nothing.
    ::rename(rotated_path(1).c_str(), opts_.path.c_str());
    return tl::unexpected(errno_text("cannot create", opts_.path));
  }
  fd_ = std::move(fd);
  size_ = 0;
  ++rotations_;
  common::fsync_dir_of(opts_.path);
  return {};
}

tl::expected<void, std::string> AuditLog::reopen() {
  std::lock_guard lock(files_mutex_);
  drop_staged();
  note_.clear();
  Fd old = std::move(fd_);
  if (auto r = open_current(); !r) {
    fd_ = std::move(old);  // keep the old file rather than none
    return r;
  }
  common::fsync_dir_of(opts_.path);
  return {};
}

std::vector<Fd> AuditLog::open_for_read() const {
  std::lock_guard lock(files_mutex_);
  std::vector<Fd> out;
  Fd cur(::open(opts_.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (cur) out.push_back(std::move(cur));
  for (int i = 1; i <= opts_.keep; ++i) {
    Fd f(::open(rotated_path(i).c_str(), O_RDONLY | O_CLOEXEC));
    if (f) out.push_back(std::move(f));
  }
  return out;
}

void AuditLog::scan_recent(const std::function<void(std::string_view)>& fn) const {
  for (const std::string& p : {rotated_path(1), opts_.path}) {
    Fd f(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (!f) continue;
    read_lines_forwards(f.get(), [&](std::string_view l) {
      if (!l.empty()) fn(l);
      return true;
    });
  }
}

}  // namespace trading_heal::exporter
