// Incident fingerprints and the cache of diagnoses keyed by them. The cache takes time as an
// argument. Not thread-safe: the caller serialises access.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::diagnoser {

// A line with its variable parts (numbers, times, pids, hex ids) replaced by '#'.
std::string normalize_line(std::string_view line);

// 16 hex digits over the category and the sorted, de-duplicated normalised lines that carry a
// warning or error (all lines when none does): the same failure seen in a later window of the
// journal gives the same fingerprint.
std::string fingerprint(std::string_view category, const std::vector<std::string>& lines);

class DiagnosisCache {
 public:
  // ttl 0 disables the cache.
  explicit DiagnosisCache(std::chrono::milliseconds ttl, std::size_t max_entries = 256);
  std::optional<proto::Diagnosis> get(const std::string& fp, common::MonoTime now);
  void put(const std::string& fp, const proto::Diagnosis& d, common::MonoTime now);
  std::uint64_t hits() const { return hits_; }
  std::uint64_t misses() const { return misses_; }
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    proto::Diagnosis diagnosis;
    common::MonoTime expires;
  };
  std::chrono::milliseconds ttl_;
  std::size_t max_entries_;
  std::map<std::string, Entry> entries_;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

}  // namespace trading_heal::diagnoser
