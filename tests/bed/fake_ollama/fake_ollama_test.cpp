// The fake Ollama answers every mode as documented (README.md), on a server of its own per test.
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/bed.hpp"
#include "support/wait.hpp"

extern char** environ;

namespace trading_heal::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kModel = "qwen2.5-coder:7b";

// One trading-heal-fake-ollama child on a free port, killed when the test ends.
class FakeOllama {
 public:
  struct Unstarted {};
  explicit FakeOllama(Unstarted) {}  // for spawn() by hand
  explicit FakeOllama(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{Bed::bin("trading-heal-fake-ollama"), "--listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string line = spawn(args);
    const std::string prefix = "listening on 127.0.0.1:";
    if (line.rfind(prefix, 0) != 0) {
      ADD_FAILURE() << "unexpected ready line: '" << line << "'";
      return;
    }
    port_ = std::stoi(line.substr(prefix.size()));
  }
  FakeOllama(const FakeOllama&) = delete;
  FakeOllama& operator=(const FakeOllama&) = delete;
  ~FakeOllama() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // Spawns `args` with stdout on a pipe; returns the first line (empty on EOF or 10 s timeout).
  std::string spawn(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe(fds) != 0) return {};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    std::string line;
    if (rc == 0) {
      pollfd p{fds[0], POLLIN, 0};
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      char c = 0;
      while (std::chrono::steady_clock::now() < deadline && ::poll(&p, 1, 100) >= 0) {
        if ((p.revents & (POLLIN | POLLHUP)) == 0) continue;
        if (::read(fds[0], &c, 1) != 1 || c == '\n') break;
        line += c;
      }
    } else {
      ADD_FAILURE() << "posix_spawn " << args[0] << ": " << rc;
      pid_ = -1;
    }
    ::close(fds[0]);
    return line;
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }

  // Waits up to `timeout` for the child to exit; returns its wait status, or -1 if still running.
  int wait_exit(std::chrono::milliseconds timeout) {
    int status = -1;
    const bool done =
        wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout, 10ms);
    if (!done) return -1;
    reaped_ = true;
    return status;
  }

  httplib::Client client() const {
    httplib::Client cli("127.0.0.1", port_);
    cli.set_read_timeout(20s);
    cli.set_connection_timeout(5s);
    return cli;
  }

  httplib::Result post(const std::string& path, const json& body) const {
    return client().Post(path.c_str(), body.dump(), "application/json");
  }

  void set_mode(const json& body) const {
    auto res = post("/_fake/mode", body);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
  }

  json records() const {
    auto res = client().Get("/_fake/requests");
    if (!res || res->status != 200) return json();
    return json::parse(res->body);
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int port_ = 0;
};

json chat_request(bool stream) {
  return {{"model", kModel},
          {"messages",
           {{{"role", "system"}, {"content", "You are an SRE. Answer JSON."}},
            {{"role", "user"}, {"content", "journal: psycopg2.OperationalError: lock timeout"}}}},
          {"format", "json"},
          {"stream", stream},
          {"options", {{"temperature", 0}, {"num_predict", 256}}}};
}

json generate_request(bool stream) {
  return {{"model", kModel}, {"prompt", "Why did BTC-USDT stall?"}, {"stream", stream}};
}

json openai_request() {
  return {{"model", kModel}, {"messages", {{{"role", "user"}, {"content", "Why?"}}}}};
}

std::vector<json> ndjson(const std::string& body) {
  std::vector<json> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

// Checks the NDJSON stream's shape and returns the concatenated content.
std::string streamed_content(const std::string& body, const std::string& field,
                             const std::string& done_reason = "stop") {
  const auto chunks = ndjson(body);
  EXPECT_GE(chunks.size(), 2U);
  std::string content;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const bool last = i + 1 == chunks.size();
    EXPECT_EQ(chunks[i].at("done").get<bool>(), last);
    EXPECT_EQ(chunks[i].at("model"), kModel);
    content += field == "message" ? chunks[i].at("message").at("content").get<std::string>()
                                  : chunks[i].at("response").get<std::string>();
  }
  if (!chunks.empty()) {
    EXPECT_EQ(chunks.back().at("done_reason"), done_reason);
    EXPECT_GT(chunks.back().at("total_duration").get<long long>(), 0);
    EXPECT_GE(chunks.back().at("eval_count").get<int>(), 1);
  }
  return content;
}

std::string chat_content(const json& j) { return j.at("message").at("content").get<std::string>(); }

json parse_or_null(const std::string& s) { return json::parse(s, nullptr, false); }

void expect_default_answer(const std::string& content) {
  const json answer = parse_or_null(content);
  ASSERT_TRUE(answer.is_object()) << content;
  EXPECT_EQ(answer.at("cause"), "DB lock on decisions table");
  EXPECT_EQ(answer.at("severity"), "high");
  EXPECT_EQ(answer.at("action"), "auto-restart");
  EXPECT_TRUE(answer.at("explanation").is_string());
}

TEST(FakeOllama, OkChatNonStreaming) {
  FakeOllama fake;
  auto res = fake.post("/api/chat", chat_request(false));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("application/json"), std::string::npos);
  const json j = json::parse(res->body);
  EXPECT_EQ(j.at("model"), kModel);
  EXPECT_TRUE(j.at("done").get<bool>());
  EXPECT_EQ(j.at("done_reason"), "stop");
  EXPECT_EQ(j.at("message").at("role"), "assistant");
  EXPECT_GT(j.at("total_duration").get<long long>(), 0);
  EXPECT_GE(j.at("eval_count").get<int>(), 1);
  EXPECT_GE(j.at("prompt_eval_count").get<int>(), 1);
  EXPECT_TRUE(j.at("created_at").is_string());
  expect_default_answer(chat_content(j));
}

TEST(FakeOllama, OkChatStreamingAndStreamDefaultsToTrue) {
  FakeOllama fake;
  auto res = fake.post("/api/chat", chat_request(true));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("application/x-ndjson"), std::string::npos);
  expect_default_answer(streamed_content(res->body, "message"));

  json no_stream_field = chat_request(true);
  no_stream_field.erase("stream");
  res = fake.post("/api/chat", no_stream_field);
  ASSERT_TRUE(res);
  expect_default_answer(streamed_content(res->body, "message"));
}

TEST(FakeOllama, OkGenerateBothWays) {
  FakeOllama fake;
  auto res = fake.post("/api/generate", generate_request(false));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const json j = json::parse(res->body);
  EXPECT_TRUE(j.at("done").get<bool>());
  EXPECT_EQ(j.at("done_reason"), "stop");
  expect_default_answer(j.at("response").get<std::string>());

  res = fake.post("/api/generate", generate_request(true));
  ASSERT_TRUE(res);
  expect_default_answer(streamed_content(res->body, "response"));
}

TEST(FakeOllama, OkOpenAiCompatible) {
  FakeOllama fake;
  auto res = fake.post("/v1/chat/completions", openai_request());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const json j = json::parse(res->body);
  EXPECT_EQ(j.at("object"), "chat.completion");
  EXPECT_EQ(j.at("choices").at(0).at("finish_reason"), "stop");
  EXPECT_EQ(j.at("choices").at(0).at("message").at("role"), "assistant");
  expect_default_answer(j.at("choices").at(0).at("message").at("content").get<std::string>());
  const auto& usage = j.at("usage");
  EXPECT_EQ(usage.at("total_tokens").get<int>(),
            usage.at("prompt_tokens").get<int>() + usage.at("completion_tokens").get<int>());
}

TEST(FakeOllama, TagsVersionAndUnknownModel) {
  FakeOllama fake({"--model", "llama3.2:3b"});
  auto res = fake.client().Get("/api/tags");
  ASSERT_TRUE(res);
  const json tags = json::parse(res->body);
  ASSERT_EQ(tags.at("models").size(), 2U);
  EXPECT_EQ(tags["models"][0].at("name"), kModel);
  EXPECT_EQ(tags["models"][1].at("name"), "llama3.2:3b");
  res = fake.client().Get("/api/version");
  ASSERT_TRUE(res);
  EXPECT_TRUE(json::parse(res->body).at("version").is_string());

  json req = chat_request(false);
  req["model"] = "llama3.2";  // no tag = ":latest", which is not there
  res = fake.post("/api/chat", req);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(json::parse(res->body),
            json({{"error", "model \"llama3.2\" not found, try pulling it first"}}));
  req["model"] = "llama3.2:3b";
  res = fake.post("/api/chat", req);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(FakeOllama, SlowWaitsThenAnswers) {
  FakeOllama fake;
  fake.set_mode({{"mode", "slow"}, {"seconds", 1}});
  const auto t0 = std::chrono::steady_clock::now();
  auto res = fake.post("/api/chat", chat_request(false));
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_GE(elapsed, 1s);
  const json j = json::parse(res->body);
  EXPECT_GE(j.at("total_duration").get<long long>(), 1'000'000'000LL);
  expect_default_answer(chat_content(j));
}

TEST(FakeOllama, Http500AndNotFoundModes) {
  FakeOllama fake;
  fake.set_mode({{"mode", "http500"}});
  auto res = fake.post("/api/chat", chat_request(false));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  EXPECT_TRUE(json::parse(res->body).at("error").is_string());

  fake.set_mode({{"mode", "notfound"}});
  res = fake.post("/api/generate", generate_request(true));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(json::parse(res->body).at("error"),
            "model \"qwen2.5-coder:7b\" not found, try pulling it first");
  res = fake.post("/v1/chat/completions", openai_request());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(json::parse(res->body).at("error").at("type"), "not_found_error");
}

TEST(FakeOllama, GarbageFencedTruncated) {
  FakeOllama fake;
  fake.set_mode({{"mode", "garbage"}});
  auto res = fake.post("/api/chat", chat_request(false));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  std::string content = chat_content(json::parse(res->body));
  EXPECT_FALSE(content.empty());
  EXPECT_TRUE(parse_or_null(content).is_discarded()) << content;
  EXPECT_EQ(content.find('{'), std::string::npos);

  fake.set_mode({{"mode", "fenced"}});
  res = fake.post("/api/chat", chat_request(false));
  ASSERT_TRUE(res);
  content = chat_content(json::parse(res->body));
  EXPECT_TRUE(parse_or_null(content).is_discarded());
  const auto open = content.find("```json\n");
  const auto close = content.rfind("```");
  ASSERT_NE(open, std::string::npos);
  ASSERT_GT(open, 0U) << "a sentence comes before the fence";
  ASSERT_GT(close, open);
  expect_default_answer(content.substr(open + 8, close - open - 8));

  fake.set_mode({{"mode", "truncated"}});
  res = fake.post("/api/chat", chat_request(false));
  ASSERT_TRUE(res);
  const json j = json::parse(res->body);
  EXPECT_EQ(j.at("done_reason"), "length");
  EXPECT_EQ(chat_content(j).front(), '{');
  EXPECT_TRUE(parse_or_null(chat_content(j)).is_discarded());
  res = fake.post("/api/chat", chat_request(true));
  ASSERT_TRUE(res);
  EXPECT_TRUE(parse_or_null(streamed_content(res->body, "message", "length")).is_discarded());
  res = fake.post("/v1/chat/completions", openai_request());
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body).at("choices").at(0).at("finish_reason"), "length");
}

TEST(FakeOllama, LongIsChunkedAndHuge) {
  FakeOllama fake;
  fake.set_mode({{"mode", "long"}});
  auto res = fake.post("/api/chat", chat_request(false));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_FALSE(res->has_header("Content-Length"));
  EXPECT_EQ(res->get_header_value("Transfer-Encoding"), "chunked");
  EXPECT_GE(chat_content(json::parse(res->body)).size(), 1024U * 1024U);

  res = fake.post("/api/generate", generate_request(true));
  ASSERT_TRUE(res);
  EXPECT_GE(streamed_content(res->body, "response").size(), 1024U * 1024U);
}

TEST(FakeOllama, CloseCutsTheAnswer) {
  FakeOllama fake;
  fake.set_mode({{"mode", "close"}});
  for (const bool stream : {false, true}) {
    // httplib reports a body shorter than announced (or an unfinished chunked one) as an error.
    auto res = fake.post("/api/chat", chat_request(stream));
    EXPECT_FALSE(res) << "stream=" << stream << " got a whole answer";
    if (!res) {
      EXPECT_EQ(res.error(), httplib::Error::Read);
    }
  }
  EXPECT_EQ(fake.records().size(), 2U);
}

TEST(FakeOllama, RecordsEveryModelRequest) {
  FakeOllama fake;
  const auto before =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const json sent = chat_request(false);
  ASSERT_TRUE(fake.post("/api/chat", sent));
  ASSERT_TRUE(fake.post("/api/generate", generate_request(true)));
  ASSERT_TRUE(fake.client().Get("/api/tags"));  // not a model request
  auto bad = fake.client().Post("/api/chat", "not json{", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);

  const json records = fake.records();
  ASSERT_EQ(records.size(), 3U) << records.dump(2);
  EXPECT_EQ(records[0].at("method"), "POST");
  EXPECT_EQ(records[0].at("path"), "/api/chat");
  EXPECT_EQ(records[0].at("body"), sent);
  EXPECT_GE(records[0].at("time").get<double>(), before - 1);
  EXPECT_EQ(records[1].at("path"), "/api/generate");
  EXPECT_EQ(records[1].at("body"), generate_request(true));
  EXPECT_TRUE(records[2].at("body").is_null());
  EXPECT_EQ(records[2].at("raw"), "not json{");
}

TEST(FakeOllama, AnswerFailCountAndReset) {
  FakeOllama fake;
  const json answer{{"cause", "exchange API timeout"},
                    {"severity", "medium"},
                    {"action", "auto-restart"},
                    {"explanation", "ccxt.RequestTimeout"}};
  auto res = fake.post("/_fake/answer", answer);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  res = fake.post("/api/chat", chat_request(false));
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(chat_content(json::parse(res->body))), answer);

  fake.set_mode({{"mode", "http500"}, {"fail_count", 2}});
  for (const int expected : {500, 500, 200, 200}) {
    res = fake.post("/api/chat", chat_request(false));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, expected);
  }
  EXPECT_EQ(fake.records().size(), 5U);

  fake.set_mode({{"mode", "garbage"}});
  res = fake.post("/_fake/reset", json::object());
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body).at("mode"), "ok");
  EXPECT_EQ(fake.records(), json::array());
  res = fake.post("/api/chat", chat_request(false));
  ASSERT_TRUE(res);
  expect_default_answer(chat_content(json::parse(res->body)));

  res = fake.post("/_fake/mode", {{"mode", "sideways"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
}

TEST(FakeOllama, OversizedBodyIsRefused) {
  FakeOllama fake;
  auto res = fake.client().Post("/api/chat", std::string(5 * 1024 * 1024, 'x'), "application/json");
  // httplib answers 413 (or drops the connection while the client is still sending).
  if (res) {
    EXPECT_EQ(res->status, 413);
  }
  auto tags = fake.client().Get("/api/tags");
  ASSERT_TRUE(tags);
  EXPECT_EQ(tags->status, 200);
}

TEST(FakeOllama, RefusesNonLoopbackListen) {
  FakeOllama help(FakeOllama::Unstarted{});
  EXPECT_EQ(help.spawn({Bed::bin("trading-heal-fake-ollama"), "--help"}).rfind("usage:", 0), 0U);
  EXPECT_EQ(help.wait_exit(5s), 0);
  for (const char* listen : {"0.0.0.0:0", "192.0.2.1:0", "[::]:0", "localhost.evil.com:0"}) {
    FakeOllama fake(FakeOllama::Unstarted{});
    const std::string line = fake.spawn({Bed::bin("trading-heal-fake-ollama"), "--listen", listen});
    EXPECT_EQ(line, "") << listen;
    const int status = fake.wait_exit(5s);
    ASSERT_TRUE(WIFEXITED(status)) << listen;
    EXPECT_EQ(WEXITSTATUS(status), 78) << listen;
  }
}

TEST(FakeOllama, SigtermDuringSlowRequestExitsPromptly) {
  FakeOllama fake;
  fake.set_mode({{"mode", "slow"}, {"seconds", 60}});
  std::thread caller([&] {
    httplib::Client cli("127.0.0.1", fake.port());
    cli.set_read_timeout(30s);
    auto res = cli.Post("/api/chat", chat_request(false).dump(), "application/json");
    if (res) {
      EXPECT_NE(res->status, 200);
    }
  });
  ASSERT_TRUE(wait_until([&] { return fake.records().size() == 1; }, 5s));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(fake.pid(), SIGTERM), 0);
  const int status = fake.wait_exit(1s);
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  caller.join();
  ASSERT_NE(status, -1) << "still running 1 s after SIGTERM";
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(elapsed, 1s);
}

}  // namespace
}  // namespace trading_heal::test
