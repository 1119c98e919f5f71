#include "trading_heal/common/curve.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>

#include <zmq.h>

#include "trading_heal/common/files.hpp"

namespace trading_heal::common {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

// The non-comment, non-blank lines of an open file of at most 4 KiB, each a key.
tl::expected<std::vector<std::string>, std::string> key_lines(int fd, const std::string& path) {
  std::string text(4097, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return tl::unexpected(path + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > 4096) return tl::unexpected(path + ": not a key file (over 4 KiB)");
  text.resize(got);
  std::vector<std::string> keys;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = trim(text.substr(start, end - start));
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    if (!decode_curve_key(line)) {
      return tl::unexpected(path + ": not a CURVE key (want 40 Z85 characters on a line)");
    }
    keys.push_back(line);
  }
  if (keys.empty()) return tl::unexpected(path + ": holds no key");
  return keys;
}

tl::expected<std::string, std::string> key_line(int fd, const std::string& path) {
  auto keys = key_lines(fd, path);
  if (!keys) return tl::unexpected(keys.error());
  if (keys->size() > 1)
    return tl::unexpected(path + ": holds " + std::to_string(keys->size()) + " keys, want one");
  return keys->front();
}

tl::expected<int, std::string> open_regular(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ELOOP) return tl::unexpected(path + ": is a symbolic link (refused)");
    return tl::unexpected(path + ": cannot open: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return tl::unexpected(path + ": not a regular file");
  }
  return fd;
}

tl::expected<void, std::string> write_new(const std::string& path, const std::string& text,
                                          mode_t mode, std::optional<unsigned> uid,
                                          std::optional<unsigned> gid) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    if (errno == EEXIST) return tl::unexpected(path + ": exists already (not replaced)");
    return tl::unexpected(path + ": cannot create: " + std::strerror(errno));
  }
  bool ok = ::fchmod(fd, mode) == 0;  // the umask must not widen or narrow it
  if (ok && (uid || gid)) {
    ok =
        ::fchown(fd, uid ? *uid : static_cast<uid_t>(-1), gid ? *gid : static_cast<gid_t>(-1)) == 0;
  }
  ok = ok && write_all(fd, text.data(), text.size()) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return tl::unexpected(path + ": cannot write: " + std::strerror(err));
  }
  return {};
}

}  // namespace

CurveKeyPair generate_curve_keys() {
  char pub[41] = {};
  char sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    throw std::runtime_error(std::string("cannot make a CURVE key pair: ") + zmq_strerror(errno));
  }
  CurveKeyPair k{pub, sec};
  std::fill(std::begin(sec), std::end(sec), '\0');
  return k;
}

std::optional<CurveKey> decode_curve_key(const std::string& z85) {
  if (z85.size() != 40) return std::nullopt;
  CurveKey key{};
  if (zmq_z85_decode(key.data(), z85.c_str()) == nullptr) return std::nullopt;
  return key;
}

std::string encode_curve_key(const CurveKey& key) {
  char out[41] = {};
  zmq_z85_encode(out, key.data(), key.size());
  return out;
}

tl::expected<std::string, std::string> curve_public_of(const std::string& secret_z85) {
  if (!decode_curve_key(secret_z85)) return tl::unexpected(std::string("not a CURVE key"));
  char pub[41] = {};
  if (zmq_curve_public(pub, secret_z85.c_str()) != 0) {
    return tl::unexpected(std::string("cannot derive the public key: ") + zmq_strerror(errno));
  }
  return std::string(pub);
}

tl::expected<std::string, std::string> read_public_key_file(const std::string& path) {
  auto fd = open_regular(path);
  if (!fd) return tl::unexpected(fd.error());
  auto key = key_line(*fd, path);
  ::close(*fd);
  return key;
}

tl::expected<std::vector<std::string>, std::string> read_public_keys_file(const std::string& path) {
  auto fd = open_regular(path);
  if (!fd) return tl::unexpected(fd.error());
  auto keys = key_lines(*fd, path);
  ::close(*fd);
  return keys;
}

tl::expected<CurveKeyPair, std::string> read_secret_key_file(const std::string& path) {
  auto fd = open_regular(path);
  if (!fd) return tl::unexpected(fd.error());
  struct stat st {};
  ::fstat(*fd, &st);
  std::string why;
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    why = "owned by uid " + std::to_string(st.st_uid) + ", not by this process's user (uid " +
          std::to_string(::geteuid()) + ") or root";
  } else if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    why = std::string("readable or writable by others (mode ") + mode + ", want 0600)";
  }
  if (!why.empty()) {
    ::close(*fd);
    return tl::unexpected(path + ": secret key file " + why);
  }
  auto private_z85 = key_line(*fd, path);
  ::close(*fd);
  if (!private_z85) return tl::unexpected(private_z85.error());
  auto pub = curve_public_of(*private_z85);
  if (!pub) return tl::unexpected(path + ": " + pub.error());
  return CurveKeyPair{*pub, *private_z85};
}

tl::expected<WrittenKeys, std::string> write_key_files(const std::string& dir,
                                                       const std::string& name,
                                                       std::optional<unsigned> owner_uid,
                                                       std::optional<unsigned> owner_gid) {
  if (!valid_host_name(name)) {
    return tl::unexpected("key name '" + name +
                          "': want 1-63 of [A-Za-z0-9._-], starting with a letter or digit");
  }
  const auto keys = generate_curve_keys();
  WrittenKeys w{dir + "/" + name + ".key", dir + "/" + name + ".pub", keys.public_z85};
  if (::access(w.public_path.c_str(), F_OK) == 0) {
    return tl::unexpected(w.public_path + ": exists already (not replaced)");
  }
  const std::string header = "# trading-heal CURVE key of " + name + "\n";
  if (auto r =
          write_new(w.secret_path, header + keys.secret_z85 + "\n", 0600, owner_uid, owner_gid);
      !r) {
    return tl::unexpected(r.error());
  }
  if (auto r =
          write_new(w.public_path, header + keys.public_z85 + "\n", 0644, owner_uid, owner_gid);
      !r) {
    ::unlink(w.secret_path.c_str());
    return tl::unexpected(r.error());
  }
  fsync_dir_of(w.public_path);
  return w;
}

bool valid_host_name(const std::string& name) {
  if (name.empty() || name.size() > 63 || !std::isalnum(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-';
  });
}

std::string kernel_host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string name(buf, ::strnlen(buf, sizeof buf - 1));
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') {
      ch = '-';
    }
  }
  while (!name.empty() && !std::isalnum(static_cast<unsigned char>(name[0]))) name.erase(0, 1);
  if (name.size() > 63) name.resize(63);
  return name.empty() ? "localhost" : name;
}

std::string host_of_peer(const char* user_id, const std::string& local) {
  constexpr std::string_view kPrefix = "host:";
  if (user_id == nullptr) return local;
  const std::string_view id(user_id);
  if (id.substr(0, kPrefix.size()) != kPrefix) return local;
  std::string host(id.substr(kPrefix.size()));
  return valid_host_name(host) ? host : local;
}

HostAllowList HostAllowList::load(const std::string& dir) {
  HostAllowList list;
  list.dir_ = dir;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    list.problems_.push_back(dir + ": cannot read the allow-list: " + std::strerror(errno));
    return list;
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string f = e->d_name;
    if (f.size() > 4 && f.compare(f.size() - 4, 4, ".pub") == 0) names.push_back(f);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::set<CurveKey> ambiguous;
  for (const auto& f : names) {
    const std::string host = f.substr(0, f.size() - 4);
    std::string path = dir;
    path.append("/").append(f);
    if (!valid_host_name(host)) {
      list.problems_.push_back(
          path.append(": '").append(host).append("' is not a host name (skipped)"));
      continue;
    }
    auto keys = read_public_keys_file(path);
    if (!keys) {
      list.problems_.push_back(keys.error() + " (skipped)");
      continue;
    }
    for (const auto& z85 : *keys) {  // one per component of the host
      const CurveKey key = *decode_curve_key(z85);
      if (ambiguous.count(key) != 0) {
        list.problems_.push_back(path + ": a key of another host too (neither admitted)");
        continue;
      }
      if (auto [it, fresh] = list.hosts_.emplace(key, host); !fresh && it->second != host) {
        list.problems_.push_back(path + ": a key of " + it->second + " too (neither admitted)");
        list.hosts_.erase(it);
        ambiguous.insert(key);
      }
    }
  }
  return list;
}

std::optional<std::string> HostAllowList::host_of(const CurveKey& key) const {
  auto it = hosts_.find(key);
  if (it == hosts_.end()) return std::nullopt;
  return it->second;
}

}  // namespace trading_heal::common
