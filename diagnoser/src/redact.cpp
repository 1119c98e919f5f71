#include "trading_heal/diagnoser/redact.hpp"

#include <array>
#include <cctype>

namespace trading_heal::diagnoser {
namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_space(char c) { return c == ' ' || c == '\t'; }
bool is_key_char(char c) { return is_alnum(c) || c == '_' || c == '-' || c == '.'; }
bool is_token_char(char c) { return is_alnum(c) || c == '_' || c == '-' || c == '+'; }

bool iequals_at(std::string_view s, std::size_t pos, std::string_view word) {
  if (pos + word.size() > s.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (lower(s[pos + i]) != word[i]) return false;
  }
  return true;
}

// scheme://user:PASSWORD@host → scheme://user:[REDACTED]@host
std::string redact_url_passwords(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    const std::size_t sep = in.find("://", i);
    if (sep == std::string_view::npos) break;
    const std::size_t start = sep + 3;
    std::size_t end = start;
    while (end < in.size() && !is_space(in[end]) && in[end] != '/' && in[end] != '"' &&
           in[end] != '\'' && in[end] != '?' && in[end] != '#' && in[end] != '>' &&
           in[end] != ',') {
      ++end;
    }
    const std::size_t at = in.substr(start, end - start).rfind('@');
    out.append(in.substr(i, start - i));
    if (at != std::string_view::npos) {
      const std::string_view userinfo = in.substr(start, at);
      const std::size_t colon = userinfo.find(':');
      if (colon != std::string_view::npos) {
        out.append(userinfo.substr(0, colon + 1));
        out.append(kRedacted);
      } else {
        out.append(userinfo);
      }
      out.append(in.substr(start + at, end - start - at));
    } else {
      out.append(in.substr(start, end - start));
    }
    i = end;
  }
  out.append(in.substr(i));
  return out;
}

// "Bearer <token>", "Basic <token>", "Token <token>" → the scheme word kept, the token redacted.
std::string redact_auth_schemes(std::string_view in) {
  static constexpr std::array<std::string_view, 3> kSchemes = {"bearer", "basic", "token"};
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    bool done = false;
    if (is_alpha(in[i]) && (i == 0 || !is_key_char(in[i - 1]))) {
      for (auto scheme : kSchemes) {
        if (!iequals_at(in, i, scheme)) continue;
        std::size_t j = i + scheme.size();
        if (j >= in.size() || !is_space(in[j])) continue;
        while (j < in.size() && is_space(in[j])) ++j;
        std::size_t k = j;
        while (k < in.size() && (is_token_char(in[k]) || in[k] == '.' || in[k] == '/' ||
                                 in[k] == '=' || in[k] == '~')) {
          ++k;
        }
        if (k - j < 8) continue;  // "token is invalid" is prose, not a credential
        out.append(in.substr(i, j - i));
        out.append(kRedacted);
        i = k;
        done = true;
        break;
      }
    }
    if (!done) out.push_back(in[i++]);
  }
  return out;
}

// key=value, key: value, "key": "value", 'key': 'value' with a sensitive key.
std::string redact_key_values(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::size_t copied = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char sep = in[i];
    if (sep != '=' && sep != ':') continue;
    if (sep == ':' && i + 2 < in.size() && in[i + 1] == '/' && in[i + 2] == '/') continue;
    std::size_t j = i;
    while (j > copied && is_space(in[j - 1])) --j;
    if (j > copied && (in[j - 1] == '"' || in[j - 1] == '\'')) --j;
    std::size_t key_end = j;
    while (j > copied && is_key_char(in[j - 1])) --j;
    if (j == key_end || !sensitive_key(in.substr(j, key_end - j))) continue;
    std::size_t v = i + 1;
    while (v < in.size() && is_space(in[v])) ++v;
    if (v >= in.size()) continue;
    std::size_t v_end = v;
    if (in[v] == '"' || in[v] == '\'') {
      const std::size_t close = in.find(in[v], v + 1);
      v_end = close == std::string_view::npos ? in.size() : close + 1;
    } else {
      while (v_end < in.size() && !is_space(in[v_end]) && in[v_end] != ',' &&
             in[v_end] != ';' && in[v_end] != '&' && in[v_end] != '}' && in[v_end] != ')' &&
             in[v_end] != ']' && in[v_end] != '"' && in[v_end] != '\'') {
        ++v_end;
      }
    }
    if (v_end == v) continue;
    out.append(in.substr(copied, v - copied));
    const bool quoted = in[v] == '"' || in[v] == '\'';
    if (quoted) out.push_back(in[v]);
    out.append(kRedacted);
    if (quoted && v_end > v + 1 && in[v_end - 1] == in[v]) out.push_back(in[v]);
    copied = v_end;
    i = v_end - 1;
  }
  out.append(in.substr(copied));
  return out;
}

// 123456789:AAH... (Telegram bot tokens): 6-12 digits, ':', 30+ token characters.
std::string redact_telegram(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    if (is_digit(in[i]) && (i == 0 || !is_alnum(in[i - 1]))) {
      std::size_t j = i;
      while (j < in.size() && is_digit(in[j])) ++j;
      if (j - i >= 6 && j - i <= 12 && j < in.size() && in[j] == ':') {
        std::size_t k = j + 1;
        while (k < in.size() && is_token_char(in[k])) ++k;
        if (k - j - 1 >= 30) {
          out.append(kRedacted);
          i = k;
          continue;
        }
      }
      out.append(in.substr(i, j - i));
      i = j;
      continue;
    }
    out.push_back(in[i++]);
  }
  return out;
}

// Runs of token characters that look random: hex of 24+ characters, or 32+ characters mixing
// letters and digits. Words, numbers and paths do not qualify.
std::string redact_long_tokens(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    if (!is_token_char(in[i]) || (i > 0 && is_token_char(in[i - 1]))) {
      out.push_back(in[i++]);
      continue;
    }
    std::size_t j = i;
    bool digit = false;
    bool alpha = false;
    bool hex = true;
    while (j < in.size() && is_token_char(in[j])) {
      digit = digit || is_digit(in[j]);
      alpha = alpha || is_alpha(in[j]);
      hex = hex && std::isxdigit(static_cast<unsigned char>(in[j])) != 0;
      ++j;
    }
    while (j < in.size() && in[j] == '=') ++j;  // base64 padding
    const std::size_t len = j - i;
    if (digit && alpha && ((hex && len >= 24) || len >= 32)) {
      out.append(kRedacted);
    } else {
      out.append(in.substr(i, len));
    }
    i = j;
  }
  return out;
}

}  // namespace

bool sensitive_key(std::string_view key) {
  std::string k;
  k.reserve(key.size());
  for (char c : key) k.push_back(c == '-' ? '_' : lower(c));
  static constexpr std::array<std::string_view, 12> kContains = {
      "password", "passwd",  "secret",     "passphrase",    "token",      "apikey",
      "api_key",  "access_key", "private_key", "credential", "authorization", "signature"};
  for (auto w : kContains) {
    if (k.find(w) != std::string::npos) return true;
  }
  static constexpr std::array<std::string_view, 5> kExact = {"key", "pwd", "pass", "auth",
                                                             "cookie"};
  for (auto w : kExact) {
    if (k == w) return true;
  }
  return k.size() > 4 && k.ends_with("_key");
}

std::string redact(std::string_view line) {
  std::string s = redact_url_passwords(line);
  s = redact_auth_schemes(s);
  s = redact_key_values(s);
  s = redact_telegram(s);
  return redact_long_tokens(s);
}

std::vector<std::string> redact_lines(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  out.reserve(lines.size());
  for (const auto& l : lines) out.push_back(redact(l));
  return out;
}

}  // namespace trading_heal::diagnoser
