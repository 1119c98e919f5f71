#include "trading_heal/diagnoser/cache.hpp"

#include <array>
#include <cctype>
#include <cstdio>
#include <set>

namespace trading_heal::diagnoser {
namespace {

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

bool significant(const std::string& line) {
  static constexpr std::array<std::string_view, 8> kWords = {
      "warning", "error", "critical", "traceback", "exception", "fail", "killed", "fatal"};
  std::string l(line.size(), '\0');
  for (std::size_t i = 0; i < line.size(); ++i) {
    l[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(line[i])));
  }
  for (auto w : kWords) {
    if (l.find(w) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::string normalize_line(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  std::size_t i = 0;
  while (i < line.size()) {
    if (is_word(line[i]) && (i == 0 || !is_word(line[i - 1]))) {
      std::size_t j = i;
      bool hex = true;
      bool digit = false;
      while (j < line.size() && is_word(line[j])) {
        hex = hex && is_hex(line[j]);
        digit = digit || is_digit(line[j]);
        ++j;
      }
      // A hex id (8+ characters with a digit) is one variable token.
      if (hex && digit && j - i >= 8) {
        out.push_back('#');
        i = j;
        continue;
      }
    }
    if (is_digit(line[i])) {
      out.push_back('#');
      while (i < line.size() && is_digit(line[i])) ++i;
      continue;
    }
    out.push_back(line[i++]);
  }
  return out;
}

std::string fingerprint(std::string_view category, const std::vector<std::string>& lines) {
  std::set<std::string> keep;
  for (const auto& l : lines) {
    if (significant(l)) keep.insert(normalize_line(l));
  }
  if (keep.empty()) {
    for (const auto& l : lines) keep.insert(normalize_line(l));
  }
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;
    h *= 1099511628211ULL;
  };
  mix(category);
  for (const auto& l : keep) mix(l);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

DiagnosisCache::DiagnosisCache(std::chrono::milliseconds ttl, std::size_t max_entries)
    : ttl_(ttl), max_entries_(max_entries) {}

std::optional<proto::Diagnosis> DiagnosisCache::get(const std::string& fp, common::MonoTime now) {
  auto it = entries_.find(fp);
  if (it == entries_.end() || now >= it->second.expires) {
    if (it != entries_.end()) entries_.erase(it);
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  return it->second.diagnosis;
}

void DiagnosisCache::put(const std::string& fp, const proto::Diagnosis& d, common::MonoTime now) {
  if (ttl_.count() <= 0) return;
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = now >= it->second.expires ? entries_.erase(it) : std::next(it);
  }
  if (entries_.size() >= max_entries_ && entries_.find(fp) == entries_.end()) {
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.expires < oldest->second.expires) oldest = it;
    }
    entries_.erase(oldest);
  }
  entries_[fp] = Entry{d, now + ttl_};
}

}  // namespace trading_heal::diagnoser
