#include "server.hpp"

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ollama_api.hpp"

namespace trading_heal::fake_ollama {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kJson = "application/json; charset=utf-8";
constexpr std::size_t kTokenBytes = 8;          // content bytes per streamed chunk ("a token")
constexpr std::size_t kLongPieceBytes = 4096;   // per chunk in Mode::kLong, to keep it quick
constexpr std::size_t kBodyWriteBytes = 65536;  // write size for a long non-streamed body

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), kJson);
}

// Streams `pieces` as a chunked body (no Content-Length). With `cut`, writes only the first half
// and then fails the provider, so httplib closes the connection with the body unfinished.
void send_chunked(httplib::Response& res, const FakeState& state, const char* content_type,
                  std::vector<std::string> pieces, bool cut) {
  auto shared = std::make_shared<std::vector<std::string>>(std::move(pieces));
  const std::size_t limit = cut ? (shared->size() + 1) / 2 : shared->size();
  res.set_chunked_content_provider(
      content_type, [shared, limit, cut, &state](std::size_t, httplib::DataSink& sink) {
        for (std::size_t i = 0; i < limit; ++i) {
          if (state.shutting_down() || !sink.write((*shared)[i].data(), (*shared)[i].size())) {
            return false;
          }
        }
        if (cut) return false;
        sink.done();
        return true;
      });
}

// A non-streamed body that announces its full Content-Length, then stops halfway and closes.
void send_cut_with_length(httplib::Response& res, std::string body) {
  auto shared = std::make_shared<std::string>(std::move(body));
  res.set_content_provider(shared->size(), kJson,
                           [shared](std::size_t, std::size_t, httplib::DataSink& sink) {
                             sink.write(shared->data(), shared->size() / 2);
                             return false;
                           });
}

std::vector<std::string> split(const std::string& s, std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t off = 0; off < s.size(); off += n) out.push_back(s.substr(off, n));
  return out;
}

struct ModelRoute {
  Api api;
  FakeState& state;
  std::shared_ptr<std::atomic<std::uint64_t>> ids;

  void operator()(const httplib::Request& req, httplib::Response& res) const {
    const auto received = std::chrono::system_clock::now();
    const auto started = std::chrono::steady_clock::now();
    state.record(req.method, req.path, req.body, received);

    if (req.body.empty()) return reply(res, 400, error_body(api, 400, "missing request body"));
    auto request = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (request.is_discarded() || !request.is_object()) {
      return reply(res, 400, error_body(api, 400, "invalid JSON request body"));
    }
    const auto model_it = request.find("model");
    if (model_it == request.end() || !model_it->is_string() || model_it->empty()) {
      return reply(res, 400, error_body(api, 400, "model is required"));
    }
    const std::string model = model_it->get<std::string>();

    const Behaviour behaviour = state.take_behaviour();
    if (behaviour.mode == Mode::kSlow && !state.wait_for(behaviour.delay)) {
      return reply(res, 503, error_body(api, 503, "server shutting down"));
    }
    if (behaviour.mode == Mode::kHttp500) {
      return reply(res, 500,
                   error_body(api, 500,
                              "llama runner process has terminated: signal: killed "
                              "(fake-ollama mode http500)"));
    }
    if (behaviour.mode == Mode::kNotFound || !state.has_model(model)) {
      return reply(res, 404, error_body(api, 404, model_not_found(model)));
    }

    // Ollama streams unless told not to; the OpenAI API is the other way round.
    const auto stream_it = request.find("stream");
    const bool stream = (stream_it != request.end() && stream_it->is_boolean())
                            ? stream_it->get<bool>()
                            : api != Api::kOpenAiChat;
    const Completion completion = content_for(behaviour.mode, state.answer());
    const Timing timing{std::chrono::system_clock::now(),
                        std::chrono::steady_clock::now() - started};
    const std::size_t chars = prompt_chars(api, request);
    const std::uint64_t id = ++*ids;
    const bool cut = behaviour.mode == Mode::kClose;

    if (stream) {
      const std::size_t piece = behaviour.mode == Mode::kLong ? kLongPieceBytes : kTokenBytes;
      const char* type = api == Api::kOpenAiChat ? "text/event-stream" : "application/x-ndjson";
      send_chunked(res, state, type,
                   stream_pieces(api, model, completion, chars, timing, id, piece), cut);
      return;
    }
    std::string body = final_response(api, model, completion, chars, timing, id).dump();
    if (cut) return send_cut_with_length(res, std::move(body));
    if (behaviour.mode == Mode::kLong) {
      return send_chunked(res, state, kJson, split(body, kBodyWriteBytes), false);
    }
    res.set_content(body, kJson);
  }
};

std::optional<json> parse_object(const httplib::Request& req, httplib::Response& res) {
  auto j = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    reply(res, 400, {{"error", "body must be a JSON object"}});
    return std::nullopt;
  }
  return j;
}

void set_mode(FakeState& state, const httplib::Request& req, httplib::Response& res) {
  const auto body = parse_object(req, res);
  if (!body) return;
  const auto name = body->value("mode", json());
  const auto mode = name.is_string() ? parse_mode(name.get<std::string>()) : std::nullopt;
  if (!mode) return reply(res, 400, {{"error", "unknown or missing mode"}});
  const auto seconds = body->value("seconds", json(0));
  const auto fail_count = body->value("fail_count", json(0));
  if (!seconds.is_number() || seconds.get<double>() < 0 || seconds.get<double>() > 86400 ||
      !fail_count.is_number_integer()) {
    return reply(res, 400, {{"error", "seconds must be 0..86400, fail_count an integer"}});
  }
  state.set_mode({*mode, milliseconds(static_cast<long long>(seconds.get<double>() * 1000.0))},
                 fail_count.get<int>());
  reply(res, 200, state.status());
}

void set_models(FakeState& state, const httplib::Request& req, httplib::Response& res) {
  const auto body = parse_object(req, res);
  if (!body) return;
  const auto models = body->value("models", json());
  if (!models.is_array()) return reply(res, 400, {{"error", "models must be an array"}});
  std::vector<std::string> names;
  for (const auto& m : models) {
    if (!m.is_string()) return reply(res, 400, {{"error", "models must be strings"}});
    names.push_back(m.get<std::string>());
  }
  state.set_extra_models(std::move(names));
  reply(res, 200, state.status());
}

}  // namespace

void install_routes(httplib::Server& server, FakeState& state) {
  auto ids = std::make_shared<std::atomic<std::uint64_t>>(0);
  server.set_payload_max_length(kMaxBodyBytes);
  server.Post("/api/chat", ModelRoute{Api::kChat, state, ids});
  server.Post("/api/generate", ModelRoute{Api::kGenerate, state, ids});
  server.Post("/v1/chat/completions", ModelRoute{Api::kOpenAiChat, state, ids});

  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("Ollama is running", "text/plain; charset=utf-8");
  });
  server.Get("/api/version",
             [](const httplib::Request&, httplib::Response& res) { reply(res, 200, version()); });
  server.Get("/api/tags", [&state](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, tags(state.models(), std::chrono::system_clock::now()));
  });
  server.Get("/v1/models", [&state](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, openai_models(state.models(), std::chrono::system_clock::now()));
  });

  server.Get("/_fake/mode", [&state](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, state.status());
  });
  server.Post("/_fake/mode", [&state](const httplib::Request& req, httplib::Response& res) {
    set_mode(state, req, res);
  });
  server.Post("/_fake/answer", [&state](const httplib::Request& req, httplib::Response& res) {
    if (auto body = parse_object(req, res)) {
      state.set_answer(std::move(*body));
      reply(res, 200, state.status());
    }
  });
  server.Post("/_fake/models", [&state](const httplib::Request& req, httplib::Response& res) {
    set_models(state, req, res);
  });
  server.Get("/_fake/requests", [&state](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, state.records());
  });
  server.Post("/_fake/reset", [&state](const httplib::Request&, httplib::Response& res) {
    state.reset();
    reply(res, 200, state.status());
  });

  server.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    std::fprintf(stderr, "request method=%s path=%s status=%d\n", req.method.c_str(),
                 req.path.c_str(), res.status);
  });
}

}  // namespace trading_heal::fake_ollama
