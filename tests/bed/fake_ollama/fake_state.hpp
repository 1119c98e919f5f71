// The fake Ollama's run-time state: failure mode, canned answer, known models, request records.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trading_heal::fake_ollama {

// What the model endpoints do. "Adding a mode? Update mode_name/parse_mode, content_for
// (ollama_api), the dispatch in server.cpp, --help in main.cpp, README.md and
// fake_ollama_test.cpp."
enum class Mode { kOk, kSlow, kHttp500, kNotFound, kGarbage, kFenced, kTruncated, kLong, kClose };

std::string_view mode_name(Mode mode);
std::optional<Mode> parse_mode(std::string_view name);

// The behaviour chosen for one request (a snapshot, so a concurrent mode change cannot tear it).
struct Behaviour {
  Mode mode = Mode::kOk;
  std::chrono::milliseconds delay{0};  // only for Mode::kSlow
};

// The model every fake knows, as the project's default OLLAMA_MODEL.
inline constexpr std::string_view kDefaultModel = "qwen2.5-coder:7b";
// Records kept by GET /_fake/requests; older ones are dropped so a long demo cannot grow forever.
inline constexpr std::size_t kMaxRecords = 1000;

nlohmann::json default_answer();

// Thread-safe: every member locks one mutex (httplib calls handlers from its thread pool).
class FakeState {
 public:
  // `initial` and `extra_models` are what reset() returns to (the command line's choice).
  FakeState(Behaviour initial, nlohmann::json answer, std::vector<std::string> extra_models);

  // Mode for every following model request; fail_count > 0 means "only the next N, then ok".
  void set_mode(Behaviour behaviour, int fail_count);
  // Takes the behaviour for one model request, consuming one unit of fail_count.
  Behaviour take_behaviour();
  nlohmann::json status() const;  // {"mode", "seconds", "fail_count", "models", "answer"}

  void set_answer(nlohmann::json answer);
  nlohmann::json answer() const;

  void set_extra_models(std::vector<std::string> models);
  std::vector<std::string> models() const;  // kDefaultModel first
  // Ollama's matching: a name without a tag means ":latest".
  bool has_model(const std::string& name) const;

  void record(const std::string& method, const std::string& path, const std::string& body,
              std::chrono::system_clock::time_point received);
  nlohmann::json records() const;

  void reset();  // records cleared; mode, answer and models back to the initial ones

  // Sleeps up to `d`; returns false at once if shutdown() was called (then or during the wait).
  bool wait_for(std::chrono::milliseconds d);
  void shutdown();
  bool shutting_down() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  const Behaviour initial_;
  const nlohmann::json initial_answer_;
  const std::vector<std::string> initial_models_;
  Behaviour behaviour_;
  int fail_count_ = 0;  // 0 = the mode sticks
  nlohmann::json answer_;
  std::vector<std::string> extra_models_;
  std::deque<nlohmann::json> records_;
  bool shutting_down_ = false;
};

}  // namespace trading_heal::fake_ollama
