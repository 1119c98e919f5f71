#include "fake_state.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace trading_heal::fake_ollama {
namespace {

struct ModeEntry {
  Mode mode;
  std::string_view name;
};
constexpr std::array<ModeEntry, 9> kModes{{{Mode::kOk, "ok"},
                                           {Mode::kSlow, "slow"},
                                           {Mode::kHttp500, "http500"},
                                           {Mode::kNotFound, "notfound"},
                                           {Mode::kGarbage, "garbage"},
                                           {Mode::kFenced, "fenced"},
                                           {Mode::kTruncated, "truncated"},
                                           {Mode::kLong, "long"},
                                           {Mode::kClose, "close"}}};

std::string with_tag(const std::string& name) {
  return name.find(':') == std::string::npos ? name + ":latest" : name;
}

}  // namespace

std::string_view mode_name(Mode mode) {
  for (const auto& e : kModes) {
    if (e.mode == mode) return e.name;
  }
  return "?";
}

std::optional<Mode> parse_mode(std::string_view name) {
  for (const auto& e : kModes) {
    if (e.name == name) return e.mode;
  }
  return std::nullopt;
}

nlohmann::json default_answer() {
  return {{"cause", "DB lock on decisions table"},
          {"severity", "high"},
          {"action", "auto-restart"},
          {"explanation",
           "psycopg2.OperationalError: could not obtain lock on relation \"decisions\"; the "
           "agent's writer thread is blocked, so its heartbeat stopped. Restarting releases the "
           "session and its lock."}};
}

FakeState::FakeState(Behaviour initial, nlohmann::json answer,
                     std::vector<std::string> extra_models)
    : initial_(initial),
      initial_answer_(std::move(answer)),
      initial_models_(std::move(extra_models)),
      behaviour_(initial_),
      answer_(initial_answer_),
      extra_models_(initial_models_) {}

void FakeState::set_mode(Behaviour behaviour, int fail_count) {
  std::lock_guard lock(mutex_);
  behaviour_ = behaviour;
  fail_count_ = std::max(fail_count, 0);
}

Behaviour FakeState::take_behaviour() {
  std::lock_guard lock(mutex_);
  Behaviour taken = behaviour_;
  if (fail_count_ > 0 && --fail_count_ == 0) behaviour_ = Behaviour{};
  return taken;
}

nlohmann::json FakeState::status() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> all{std::string(kDefaultModel)};
  all.insert(all.end(), extra_models_.begin(), extra_models_.end());
  return {{"mode", mode_name(behaviour_.mode)},
          {"seconds", static_cast<double>(behaviour_.delay.count()) / 1000.0},
          {"fail_count", fail_count_},
          {"models", all},
          {"answer", answer_}};
}

void FakeState::set_answer(nlohmann::json answer) {
  std::lock_guard lock(mutex_);
  answer_ = std::move(answer);
}

nlohmann::json FakeState::answer() const {
  std::lock_guard lock(mutex_);
  return answer_;
}

void FakeState::set_extra_models(std::vector<std::string> models) {
  std::lock_guard lock(mutex_);
  extra_models_ = std::move(models);
}

std::vector<std::string> FakeState::models() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> all{std::string(kDefaultModel)};
  all.insert(all.end(), extra_models_.begin(), extra_models_.end());
  return all;
}

bool FakeState::has_model(const std::string& name) const {
  const auto wanted = with_tag(name);
  const auto all = models();
  return std::any_of(all.begin(), all.end(),
                     [&](const std::string& m) { return with_tag(m) == wanted; });
}

void FakeState::record(const std::string& method, const std::string& path, const std::string& body,
                       std::chrono::system_clock::time_point received) {
  nlohmann::json entry{
      {"method", method},
      {"path", path},
      {"time", std::chrono::duration<double>(received.time_since_epoch()).count()}};
  auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    entry["body"] = nullptr;
    entry["raw"] = body;
  } else {
    entry["body"] = std::move(parsed);
  }
  std::lock_guard lock(mutex_);
  records_.push_back(std::move(entry));
  while (records_.size() > kMaxRecords) records_.pop_front();
}

nlohmann::json FakeState::records() const {
  std::lock_guard lock(mutex_);
  auto out = nlohmann::json::array();
  for (const auto& r : records_) out.push_back(r);
  return out;
}

void FakeState::reset() {
  std::lock_guard lock(mutex_);
  records_.clear();
  behaviour_ = initial_;
  fail_count_ = 0;
  answer_ = initial_answer_;
  extra_models_ = initial_models_;
}

bool FakeState::wait_for(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, d, [this] { return shutting_down_; });
  return !shutting_down_;
}

void FakeState::shutdown() {
  {
    std::lock_guard lock(mutex_);
    shutting_down_ = true;
  }
  wake_.notify_all();
}

bool FakeState::shutting_down() const {
  std::lock_guard lock(mutex_);
  return shutting_down_;
}

}  // namespace trading_heal::fake_ollama
