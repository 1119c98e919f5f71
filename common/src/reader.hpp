// The environment reader behind the settings table (internal to common): each reader leaves
// the default in place when the variable is unset or empty, and remembers the first error.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>

#include "trading_heal/common/config.hpp"

namespace trading_heal::common::detail {

class Reader {
 public:
  explicit Reader(const EnvLookup& env) : env_(env) {}

  std::optional<std::string> raw(const std::string& name) const {
    auto v = env_(name);
    if (v && v->empty()) return std::nullopt;
    return v;
  }

  void str(const std::string& name, std::string& out) {
    if (auto v = raw(name)) out = *v;
  }

  void boolean(const std::string& name, bool& out) {
    auto v = raw(name);
    if (!v) return;
    std::string s = *v;
    std::transform(s.begin(), s.end(), s.begin(), ::tolower);
    if (s == "true" || s == "1" || s == "yes" || s == "on") {
      out = true;
    } else if (s == "false" || s == "0" || s == "no" || s == "off") {
      out = false;
    } else {
      error(name, *v, "must be true or false");
    }
  }

  void integer(const std::string& name, int& out, int min, int max) {
    auto v = raw(name);
    if (!v) return;
    char* end = nullptr;
    errno = 0;
    long n = std::strtol(v->c_str(), &end, 10);
    if (errno != 0 || end == v->c_str() || *end != '\0' || n < min || n > max) {
      error(name, *v,
            "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
      return;
    }
    out = static_cast<int>(n);
  }

  void bytes(const std::string& name, std::uint64_t& out, std::uint64_t min) {
    auto v = raw(name);
    if (!v) return;
    char* end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(v->c_str(), &end, 10);
    if (errno != 0 || end == v->c_str() || *end != '\0' || n < min || (*v)[0] == '-') {
      error(name, *v, "must be a number of bytes >= " + std::to_string(min));
      return;
    }
    out = n;
  }

  // Seconds, fractions allowed ("0.5"). `min_s` is the smallest accepted value.
  // `also` ends the error message (another accepted word: " (or auto)").
  void seconds(const std::string& name, milliseconds& out, double min_s, double max_s = 86400,
               const char* also = "") {
    auto v = raw(name);
    if (!v) return;
    char* end = nullptr;
    errno = 0;
    double s = std::strtod(v->c_str(), &end);
    if (errno != 0 || end == v->c_str() || *end != '\0' || !std::isfinite(s) || s < min_s ||
        s > max_s || (min_s == 0 && s < 0)) {
      std::ostringstream msg;
      msg << "must be a number of seconds " << (min_s > 0 ? "> 0" : ">= 0") << " and <= " << max_s
          << also;
      error(name, *v, msg.str());
      return;
    }
    if (min_s > 0 && s <= 0) {
      error(name, *v, std::string("must be a number of seconds > 0") + also);
      return;
    }
    out = milliseconds(static_cast<std::int64_t>(std::llround(s * 1000)));
  }

  // One of a fixed set of words, e.g. system|user; the error lists them ("system or user").
  template <class E>
  void choice(const std::string& name, E& out,
              std::initializer_list<std::pair<const char*, E>> options) {
    auto v = raw(name);
    if (!v) return;
    std::string words;
    for (const auto& [word, value] : options) {
      if (*v == word) {
        out = value;
        return;
      }
      words += (words.empty() ? "" : " or ") + std::string(word);
    }
    error(name, *v, "must be " + words);
  }

  void listen(const std::string& name, std::string& out) {
    auto v = raw(name);
    if (!v) return;
    auto colon = v->rfind(':');
    if (colon == std::string::npos || colon == 0) {
      error(name, *v, "must be HOST:PORT");
      return;
    }
    char* end = nullptr;
    long port = std::strtol(v->c_str() + colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535 || colon + 1 == v->size()) {
      error(name, *v, "port must be 0-65535");
      return;
    }
    out = *v;
  }

  void error(const std::string& name, const std::string& value, const std::string& msg) {
    if (!err_) err_ = ConfigError{name, value, msg};
  }
  const std::optional<ConfigError>& err() const { return err_; }

 private:
  const EnvLookup& env_;
  std::optional<ConfigError> err_;
};

// Reads every row of the settings table into `c` (settings.cpp).
void read_settings(Reader& r, Config& c);

}  // namespace trading_heal::common::detail
