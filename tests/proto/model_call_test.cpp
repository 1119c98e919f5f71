// The model-in-the-centre bodies (model_call.hpp): round trips, and whatever is not one of them
// refused without throwing.
#include <gtest/gtest.h>

#include "trading_heal/proto/model_call.hpp"

namespace trading_heal::proto {
namespace {

TEST(ModelCall, RequestAndRepliesRoundTrip) {
  const ModelRequest req{
      .id = 42, .system = "sys", .user = "lines \"quoted\"\n", .timeout_ms = 17000};
  auto back = decode_model_request(encode(req));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, 42u);
  EXPECT_EQ(back->system, "sys");
  EXPECT_EQ(back->user, req.user);
  EXPECT_EQ(back->timeout_ms, 17000u);

  ModelReply ok{.id = 7,
                .ok = true,
                .content = "{\"cause\":\"x\"}",
                .model = "m:7b",
                .reason = "",
                .detail = "",
                .latency_seconds = 1.25};
  auto r = decode_model_reply(encode(ok));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->ok);
  EXPECT_EQ(r->content, ok.content);
  EXPECT_EQ(r->model, "m:7b");
  EXPECT_DOUBLE_EQ(r->latency_seconds, 1.25);

  auto f = decode_model_reply(encode(model_failure(9, "busy", "queue full")));
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->ok);
  EXPECT_EQ(f->id, 9u);
  EXPECT_EQ(f->reason, "busy");
  EXPECT_EQ(f->detail, "queue full");
}

TEST(ModelCall, AnythingElseIsRefused) {
  for (const char* bad : {"", "not json", "[]", "{}", R"({"v":1,"kind":"model_request","id":1})",
                          R"({"v":2,"kind":"model_request","id":1,"system":"","user":""})",
                          R"({"v":1,"kind":"model_reply","id":1,"system":"","user":""})",
                          R"({"v":1,"kind":"model_request","id":-1,"system":"","user":""})",
                          R"({"v":1,"kind":"model_request","id":1,"system":3,"user":""})",
                          R"({"v":1,"kind":"model_request","id":1,"system":"","user":"",)"
                          R"("timeout_ms":99999999999})"}) {
    EXPECT_FALSE(decode_model_request(bad)) << bad;
  }
  for (const char* bad : {R"({"v":1,"kind":"model_reply","id":1})",
                          R"({"v":1,"kind":"model_reply","id":1,"ok":true})",
                          R"({"v":1,"kind":"model_reply","id":1,"ok":false})",
                          R"({"v":1,"kind":"model_reply","id":1,"ok":false,"reason":""})",
                          R"({"v":1,"kind":"model_reply","id":1,"ok":true,"content":"x",)"
                          R"("latency_seconds":-1})"}) {
    EXPECT_FALSE(decode_model_reply(bad)) << bad;
  }
}

TEST(ModelCall, AHopAnswersForTheRequestItCouldNotPass) {
  const std::string req =
      encode(ModelRequest{.id = 5, .system = "s", .user = "u", .timeout_ms = 0});
  auto r = decode_model_reply(unanswered_reply(req, "unreachable", "no link"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, 5u);
  EXPECT_EQ(r->reason, "unreachable");
  auto g = decode_model_reply(unanswered_reply("garbage", "unreachable", "no link"));
  ASSERT_TRUE(g);
  EXPECT_EQ(g->id, 0u) << "no asker waits for id 0";
}

}  // namespace
}  // namespace trading_heal::proto
