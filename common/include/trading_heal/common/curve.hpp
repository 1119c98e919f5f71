// CURVE keys for tcp:// links between hosts (ZeroMQ's CurveZMQ, RFC 26): each host and the
// centre hold a long-term key pair; the side that binds admits only the public keys in its
// allow-list directory (one NAME.pub per host, NAME being the host's name), and the host a
// message comes from is the one bound to its key by that list, never what the message says.
// Key files hold one Z85 key (40 characters) on a line; '#' lines are comments. A secret key
// file must be a regular file of this process's user (or root) readable by no one else (0600 or
// stricter): it is refused otherwise, naming the file and what is wrong.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

namespace trading_heal::common {

using CurveKey = std::array<std::uint8_t, 32>;

struct CurveKeyPair {
  std::string public_z85;  // 40 characters
  std::string secret_z85;
};

// A fresh key pair (libsodium's generator through libzmq); throws when libzmq lacks CURVE.
CurveKeyPair generate_curve_keys();
// The 32 bytes of a Z85 key; nullopt unless `z85` is exactly 40 valid Z85 characters.
std::optional<CurveKey> decode_curve_key(const std::string& z85);
std::string encode_curve_key(const CurveKey& key);
// The public key of a secret one (both Z85).
tl::expected<std::string, std::string> curve_public_of(const std::string& secret_z85);

// The key of a key file (its one non-comment line, surrounding blanks trimmed).
tl::expected<std::string, std::string> read_public_key_file(const std::string& path);
// Every key of an allow-list file (a host's components may each have their own key).
tl::expected<std::vector<std::string>, std::string> read_public_keys_file(const std::string& path);
// A secret key file, checked as above; returns the pair (public derived from the secret).
tl::expected<CurveKeyPair, std::string> read_secret_key_file(const std::string& path);
// Writes DIR/NAME.key (0600, owned by `owner` when given) and DIR/NAME.pub (0644). Refuses to
// replace existing files (a host's identity is not changed by accident).
struct WrittenKeys {
  std::string secret_path;
  std::string public_path;
  std::string public_z85;
};
tl::expected<WrittenKeys, std::string> write_key_files(const std::string& dir,
                                                       const std::string& name,
                                                       std::optional<unsigned> owner_uid = {},
                                                       std::optional<unsigned> owner_gid = {});

// A host name as the allow-list and the records use it: 1-63 of [A-Za-z0-9._-], starting with
// a letter or digit.
bool valid_host_name(const std::string& name);
// The kernel's host name made valid (other characters become '-', at most 63): the default of
// TRADING_HEAL_HOST. "localhost" when the kernel has none.
std::string kernel_host_name();
// The host a message came from: the name bound to its sender's CURVE key (the ZAP handler makes
// it the message's User-Id, "host:NAME"), or `local` for a peer on this machine (ipc).
std::string host_of_peer(const char* user_id, const std::string& local);

// The allow-list: every DIR/NAME.pub with a valid NAME and keys (one per line: one per component
// of that host). A file that cannot be used is skipped and said in `problems`; a key listed under
// two names admits neither (which host would its records be?).
class HostAllowList {
 public:
  static HostAllowList load(const std::string& dir);
  std::optional<std::string> host_of(const CurveKey& key) const;
  std::size_t size() const { return hosts_.size(); }
  const std::vector<std::string>& problems() const { return problems_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::map<CurveKey, std::string> hosts_;
  std::vector<std::string> problems_;
};

}  // namespace trading_heal::common
