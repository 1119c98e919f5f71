#include "trading_heal/diagnoser/redact.hpp"

#include <algorithm>
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

bool is_quote(char c) { return c == '"' || c == '\''; }
bool is_one_of(char c, std::string_view set) { return set.find(c) != std::string_view::npos; }

// Whether a host — a name, an IPv4 or [IPv6] address — with an optional :port starts at `pos`
// and ends where a URL's authority may end.
bool host_at(std::string_view s, std::size_t pos) {
  std::size_t e = pos;
  if (e < s.size() && s[e] == '[') {
    e = s.find(']', e);
    if (e == std::string_view::npos) return false;
    ++e;
  } else {
    while (e < s.size() && (is_key_char(s[e]) || s[e] == '%')) ++e;
    if (e == pos) return false;
  }
  if (e < s.size() && s[e] == ':') {
    const std::size_t port = ++e;
    while (e < s.size() && is_digit(s[e])) ++e;
    if (e == port) return false;
  }
  return e == s.size() || is_space(s[e]) || is_one_of(s[e], "/?#,;'\")]}>|");
}

// Positions [from, to) of a string.
struct Span {
  std::size_t from;
  std::size_t to;
};

// The last '@' in `in` that a host follows; npos when there is none.
std::size_t last_host_at(std::string_view s, Span in) {
  for (std::size_t p = in.to; p-- > in.from;) {
    if (s[p] == '@' && host_at(s, p + 1)) return p;
  }
  return std::string_view::npos;
}

// The first `q` at or after `from` that can close a quoted string: one followed by the end of
// the line, a blank or ,;)]}. The end of `s` when there is none.
std::size_t closing_quote(std::string_view s, std::size_t from, char q) {
  for (std::size_t p = s.find(q, from); p != std::string_view::npos; p = s.find(q, p + 1)) {
    if (p + 1 == s.size() || is_space(s[p + 1]) || is_one_of(s[p + 1], ",;)]}")) return p;
  }
  return s.size();
}

// scheme://user:PASSWORD@host → scheme://user:[REDACTED]@host. Passwords are often not
// percent-encoded, so the password may hold any character but whitespace (/ ? # , @ and quotes
// included): it ends at the LAST '@' followed by a host before the next whitespace or the next
// "://" (in a quoted URL, first looked for before its closing quote). A quoted password
// ("p w"@host, 'p w'@host) may hold whitespace too. Erring towards the end of the line
// over-redacts (an '@' in the path or query after a real password takes the host along;
// `https://host:443/x?email=a@b.c` reads as user `host`, password `443/x?email=a`), never
// under-redacts.
std::string redact_url_passwords(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::size_t copied = 0;
  std::size_t pos = 0;
  for (std::size_t sep = in.find("://"); sep != std::string_view::npos; sep = in.find("://", pos)) {
    pos = sep + 3;
    std::size_t colon = pos;  // the end of the user name
    while (colon < in.size() && !is_space(in[colon]) && !is_quote(in[colon]) &&
           !is_one_of(in[colon], "/?#@:")) {
      ++colon;
    }
    if (colon >= in.size() || in[colon] != ':') continue;
    const std::size_t pass = colon + 1;
    std::size_t at = std::string_view::npos;
    if (pass < in.size() && is_quote(in[pass])) {
      const char close[] = {in[pass], '@'};
      const std::size_t q = in.find(std::string_view(close, 2), pass + 1);
      if (q != std::string_view::npos && host_at(in, q + 2)) at = q + 1;
    }
    std::size_t limit = pass;
    while (limit < in.size() && !is_space(in[limit])) ++limit;
    limit = std::min(limit, in.find("://", pass));
    // In a quoted URL ("url": "scheme://...", 'scheme://...') look first before the quote that
    // can close it, so that an '@' further on the line ("email": "a@b.c") is not taken.
    std::size_t scheme = sep;
    while (scheme > 0 && (is_alnum(in[scheme - 1]) || is_one_of(in[scheme - 1], "+.-"))) --scheme;
    if (at == std::string_view::npos && scheme > 0 && is_quote(in[scheme - 1])) {
      at = last_host_at(in, {pass, std::min(limit, closing_quote(in, pass, in[scheme - 1]))});
    }
    if (at == std::string_view::npos) at = last_host_at(in, {pass, limit});
    if (at == std::string_view::npos || at == pass) continue;  // no password, or an empty one
    out.append(in.substr(copied, pass - copied));
    out.append(kRedacted);
    copied = at;
    pos = at + 1;
  }
  out.append(in.substr(copied));
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

// Whether a new field starts at `pos`: `key=`, `key = `, `key: `, `"key":` or `'key':`. A ':'
// counts only before a blank or a quote, so "15:40" and "host:port" do not start one.
bool field_at(std::string_view s, std::size_t pos) {
  std::size_t k = pos;
  if (k < s.size() && is_quote(s[k])) ++k;
  const std::size_t key = k;
  while (k < s.size() && is_key_char(s[k])) ++k;
  if (k == key) return false;
  if (k < s.size() && is_quote(s[k])) ++k;
  while (k < s.size() && is_space(s[k])) ++k;
  if (k >= s.size()) return false;
  if (s[k] == '=') return true;
  return s[k] == ':' && (k + 1 == s.size() || is_space(s[k + 1]) || is_quote(s[k + 1]));
}

// Keys whose values people choose, so they may hold blanks: passwords, passphrases, secrets.
// Except in an environment assignment (an upper-case key and '=': PGPASSWORD=x psql), where,
// as in the shell, a blank ends an unquoted value.
bool may_hold_blanks(std::string_view key, char sep) {
  const bool env = sep == '=' && std::none_of(key.begin(), key.end(), [](char c) {
                     return std::islower(static_cast<unsigned char>(c)) != 0;
                   });
  if (env) return false;
  std::string k;
  for (char c : key) k.push_back(lower(c));
  return k.find("pass") != std::string::npos || k.find("pwd") != std::string::npos ||
         k.find("secret") != std::string::npos;
}

// The end of an unquoted value starting at `v`. It runs up to the next field (`, key=`,
// `& key=`, ` key: `...), the " | " between the agents' log fields, or the end of the line;
// when the key's values cannot hold blanks (tokens, API keys), also up to the next blank.
// Separators (`,;&`) not followed by a field are part of the value: `password=a,b;c` is one
// value. Closing brackets and quotes left unbalanced at its end belong to the text around it
// (`Config(password=x)`, `"password=x"`).
std::size_t unquoted_end(std::string_view s, std::size_t v, bool blanks) {
  auto is_sep = [](char c) { return is_space(c) || c == ',' || c == ';' || c == '&'; };
  std::size_t e = v;
  while (e < s.size()) {
    if (!is_sep(s[e])) {
      ++e;
      continue;
    }
    if (!blanks && is_space(s[e])) break;
    std::size_t k = e;
    while (k < s.size() && is_sep(s[k])) ++k;
    if (k == s.size() || field_at(s, k)) break;
    if (is_space(s[e]) && s[k] == '|' && (k + 1 == s.size() || is_space(s[k + 1]))) break;
    if (!blanks && is_space(s[k - 1])) break;
    e = k;
  }
  while (e > v) {
    const char c = s[e - 1];
    const std::string_view value = s.substr(v, e - v);
    const auto count = [&](char x) { return std::count(value.begin(), value.end(), x); };
    const char open = c == ')' ? '(' : c == ']' ? '[' : c == '}' ? '{' : '\0';
    if ((open != '\0' && count(open) < count(c)) || (is_quote(c) && count(c) % 2 == 1)) {
      --e;
    } else {
      break;
    }
  }
  return e;
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
    if (j > copied && is_quote(in[j - 1])) --j;
    std::size_t key_end = j;
    while (j > copied && is_key_char(in[j - 1])) --j;
    const std::string_view key = in.substr(j, key_end - j);
    if (key.empty() || !sensitive_key(key)) continue;
    std::size_t v = i + 1;
    while (v < in.size() && is_space(in[v])) ++v;
    if (v >= in.size() || (v > i + 1 && field_at(in, v))) continue;  // `password= user=bob`
    std::size_t v_end = v;
    const bool quoted = is_quote(in[v]);
    if (quoted) {
      const std::size_t close = in.find(in[v], v + 1);
      v_end = close == std::string_view::npos ? in.size() : close + 1;
    } else {
      v_end = unquoted_end(in, v, may_hold_blanks(key, sep));
    }
    if (v_end == v) continue;
    out.append(in.substr(copied, v - copied));
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

// A run of token characters that looks random: hex of 24+ characters, or 32+ characters mixing
// letters and digits. Words, numbers and paths do not qualify. `run` includes base64 padding.
bool looks_random(std::string_view run) {
  bool digit = false;
  bool alpha = false;
  bool hex = true;
  for (char c : run) {
    if (c == '=') continue;
    digit = digit || is_digit(c);
    alpha = alpha || is_alpha(c);
    hex = hex && std::isxdigit(static_cast<unsigned char>(c)) != 0;
  }
  return digit && alpha && ((hex && run.size() >= 24) || run.size() >= 32);
}

// Standard base64 with '/' in it (wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY): only the base64
// alphabet, 32+ characters before the padding, upper case, lower case and digits all present,
// and few slashes (random base64 has one in 64 characters; allowed: one in 16, which keeps
// /api/v1/accounts/5f3a9Bc0d1E2f3A4b5C6d7E8 out). Not starting with '/': that is an absolute
// path (/home/Trader2/CryptoAgent/ModelsV3/BTCUSDT), and costs one random token in 64. Paths
// rarely qualify otherwise: their segments hold '.', '-' or '_', or do not mix cases and digits.
bool looks_like_base64(std::string_view run) {
  const std::string_view body = run.substr(0, run.find('='));
  if (body.size() < 32 || body.front() == '/') return false;
  const auto slashes = static_cast<std::size_t>(std::count(body.begin(), body.end(), '/'));
  if (slashes == 0 || slashes * 16 > body.size()) return false;
  bool upper = false;
  bool lower_case = false;
  bool digit = false;
  for (char c : body) {
    if (!is_alnum(c) && c != '+' && c != '/') return false;
    upper = upper || std::isupper(static_cast<unsigned char>(c)) != 0;
    lower_case = lower_case || std::islower(static_cast<unsigned char>(c)) != 0;
    digit = digit || is_digit(c);
  }
  return upper && lower_case && digit;
}

// Long random-looking tokens: runs of token characters and '/' (plus '=' padding) that are
// base64, else each '/'-separated piece on its own by looks_random().
std::string redact_long_tokens(std::string_view in) {
  auto is_run_char = [](char c) { return is_token_char(c) || c == '/'; };
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    if (!is_run_char(in[i]) || (i > 0 && is_token_char(in[i - 1]))) {
      out.push_back(in[i++]);
      continue;
    }
    std::size_t j = i;
    while (j < in.size() && is_run_char(in[j])) ++j;
    while (j < in.size() && in[j] == '=') ++j;  // base64 padding
    const std::string_view run = in.substr(i, j - i);
    if (looks_like_base64(run)) {
      out.append(kRedacted);
    } else {
      std::size_t p = 0;
      while (p < run.size()) {
        std::size_t q = run.find('/', p);
        if (q == std::string_view::npos) q = run.size();
        const std::string_view piece = run.substr(p, q - p);
        out.append(looks_random(piece) ? kRedacted : piece);
        if (q < run.size()) out.push_back('/');
        p = q + 1;
      }
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
      "password", "passwd",     "secret",      "passphrase", "token",         "apikey",
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
