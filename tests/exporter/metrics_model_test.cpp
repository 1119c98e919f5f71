// Metrics: a scripted sequence of reports, heartbeats and events, then the exposition checked
// line by line for every metric of docs/reference.md, and by promtool; the reference's metrics
// table names exactly the families the exporter registers, with their types.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "support/bed.hpp"
#include "trading_heal/exporter/metrics_model.hpp"

namespace trading_heal::exporter {
namespace {

std::vector<common::AgentSpec> fleet() {
  std::vector<common::AgentSpec> out;
  for (const char* i : {"BTC_USDT", "ETH_USDT", "BTC_USDT_conservative"}) {
    common::AgentSpec a;
    a.instance = i;
    std::tie(a.symbol, a.profile) = common::symbol_and_profile(i);
    out.push_back(a);
  }
  return out;
}

proto::HealthReport report(const std::string& agent, proto::Verdict v, std::optional<double> age) {
  proto::HealthReport r;
  r.agent = agent;
  std::tie(r.symbol, r.profile) = common::symbol_and_profile(agent);
  r.verdict = v;
  r.decision_age_seconds = age;
  r.unit_ok = v != proto::Verdict::kDown;
  r.process_ok = v != proto::Verdict::kDown;
  r.age_ok = v == proto::Verdict::kHealthy;
  r.consecutive_failures = v == proto::Verdict::kHealthy ? 0 : 3;
  r.rss_bytes = 123456789;
  r.cpu_ratio = 0.25;
  r.heartbeat_age_seconds = 4.5;
  r.stall_threshold_seconds = 600;
  return r;
}

proto::Event event(const std::string& action, const std::string& agent, bool success = true) {
  proto::Event e;
  e.action = action;
  e.agent = agent;
  if (!agent.empty()) std::tie(e.symbol, e.profile) = common::symbol_and_profile(agent);
  e.success = success;
  return e;
}

std::string exposition(prometheus::Registry& reg) {
  return prometheus::TextSerializer().Serialize(reg.Collect());
}

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l == line) return true;
  }
  return false;
}

TEST(MetricsModel, ExpositionHasEverySpecMetricLineByLine) {
  prometheus::Registry reg;
  MetricsModel m(reg, fleet());
  m.on_health(report("BTC_USDT", proto::Verdict::kHealthy, 12.5));
  auto eth = report("ETH_USDT", proto::Verdict::kStalled, 1500);
  eth.stall_threshold_seconds = 45;  // learned (TRADING_HEAL_STALL_THRESHOLD=auto)
  eth.threshold_source = proto::ThresholdSource::kLearned;
  m.on_health(eth);
  m.on_health(report("BTC_USDT_conservative", proto::Verdict::kDown, std::nullopt));
  auto diag = event("diagnosis", "ETH_USDT");
  diag.fields["latency_seconds"] = 7.25;
  diag.fields["source"] = std::string("llm");
  m.on_event(diag);
  auto rules = event("diagnosis", "ETH_USDT");
  rules.fields["source"] = std::string("rules");
  m.on_event(rules);  // not an Ollama analysis
  auto oerr = event("ollama_error", "BTC_USDT_conservative", false);
  oerr.fields["latency_seconds"] = 30.0;
  m.on_event(oerr);
  m.on_event(event("restart", "ETH_USDT"));
  m.on_event(event("restart", "ETH_USDT"));
  m.on_event(event("restart_failed", "ETH_USDT", false));
  m.on_event(event("rate_limited", "ETH_USDT"));
  m.on_event(event("recovered", "ETH_USDT"));
  m.on_event(event("Weird Action!", "ETH_USDT"));
  auto global = event("global_incident", "");
  m.on_event(global);
  proto::Heartbeat hb;
  hb.component = "probe";
  hb.stats["cycle_seconds"] = 0.042;
  m.on_heartbeat(hb);
  m.set_component_up("probe", true);
  m.set_component_up("diagnoser", false);
  m.set_component_up("actuator", true);
  m.set_rejected(proto::Reject::kMalformed, 3);
  m.set_rejected(proto::Reject::kMalformed, 5);
  m.add_gaps(2);

  const std::string text = exposition(reg);
  const std::vector<std::string> expected = {
      // docs/reference.md "Metrics"
      R"(trading_agent_up{host="localhost",symbol="BTC-USDT"} 1)",
      R"(trading_agent_up{host="localhost",symbol="ETH-USDT"} 1)",
      R"(trading_agent_up{host="localhost",profile="conservative",symbol="BTC-USDT"} 0)",
      R"(trading_agent_stalled{host="localhost",symbol="BTC-USDT"} 0)",
      R"(trading_agent_stalled{host="localhost",symbol="ETH-USDT"} 1)",
      R"(trading_agent_stalled{host="localhost",profile="conservative",symbol="BTC-USDT"} 0)",
      R"(trading_agent_last_decision_age_seconds{host="localhost",symbol="BTC-USDT"} 12.5)",
      R"(trading_agent_last_decision_age_seconds{host="localhost",symbol="ETH-USDT"} 1500)",
      R"(trading_agent_last_decision_age_seconds{host="localhost",profile="conservative",symbol="BTC-USDT"} Nan)",
      R"(trading_ollama_analyze_total{host="localhost",symbol="ETH-USDT"} 1)",
      R"(trading_ollama_analyze_total{host="localhost",symbol="BTC-USDT"} 0)",
      R"(trading_ollama_analysis_latency_seconds{host="localhost",symbol="ETH-USDT"} 7.25)",
      R"(trading_ollama_analysis_latency_seconds{host="localhost",profile="conservative",symbol="BTC-USDT"} 30)",
      R"(trading_agent_restart_total{host="localhost",symbol="ETH-USDT"} 2)",
      R"(trading_agent_restart_total{host="localhost",symbol="BTC-USDT"} 0)",
      R"(trading_agent_consecutive_failures{host="localhost",symbol="BTC-USDT"} 0)",
      R"(trading_agent_consecutive_failures{host="localhost",symbol="ETH-USDT"} 3)",
      R"(trading_selfheal_actions_total{action="restart",host="localhost",symbol="ETH-USDT"} 2)",
      R"(trading_selfheal_actions_total{action="restart",host="localhost",symbol="BTC-USDT"} 0)",
      R"(trading_selfheal_actions_total{action="restart_failed",host="localhost",symbol="ETH-USDT"} 1)",
      R"(trading_selfheal_actions_total{action="rate_limited",host="localhost",symbol="ETH-USDT"} 1)",
      R"(trading_selfheal_actions_total{action="recovered",host="localhost",symbol="ETH-USDT"} 1)",
      R"(trading_selfheal_actions_total{action="diagnosis",host="localhost",symbol="ETH-USDT"} 2)",
      R"(trading_selfheal_actions_total{action="ollama_error",host="localhost",profile="conservative",symbol="BTC-USDT"} 1)",
      R"(trading_selfheal_actions_total{action="other",host="localhost",symbol="ETH-USDT"} 1)",
      R"(trading_selfheal_actions_total{action="global_incident",host="localhost",symbol=""} 1)",
      // Issue 6 additions
      R"(trading_ollama_analysis_duration_seconds_count 2)",
      R"(trading_ollama_analysis_duration_seconds_sum 37.25)",
      R"(trading_ollama_analysis_duration_seconds_bucket{le="7.5"} 1)",
      R"(trading_ollama_analysis_duration_seconds_bucket{le="30"} 2)",
      R"(trading_ollama_analysis_duration_seconds_bucket{le="+Inf"} 2)",
      R"(trading_agent_rss_bytes{host="localhost",symbol="BTC-USDT"} 123456789)",
      R"(trading_agent_cpu_ratio{host="localhost",symbol="BTC-USDT"} 0.25)",
      R"(trading_agent_heartbeat_age_seconds{host="localhost",symbol="BTC-USDT"} 4.5)",
      R"(trading_agent_stall_threshold_seconds{host="localhost",symbol="BTC-USDT"} 600)",
      R"(trading_agent_stall_threshold_seconds{host="localhost",symbol="ETH-USDT"} 45)",
      R"(trading_agent_stall_threshold_seconds{host="localhost",profile="conservative",symbol="BTC-USDT"} 600)",
      R"(trading_selfheal_global_incident{host="localhost"} 1)",
      R"(trading_selfheal_component_up{component="probe",host="localhost"} 1)",
      R"(trading_selfheal_component_up{component="diagnoser",host="localhost"} 0)",
      R"(trading_selfheal_component_up{component="actuator",host="localhost"} 1)",
      R"(trading_selfheal_component_up{component="exporter",host="localhost"} 1)",
      R"(trading_selfheal_probe_cycle_seconds{host="localhost"} 0.042)",
      R"(trading_selfheal_messages_rejected_total{reason="malformed"} 5)",
      R"(trading_selfheal_messages_rejected_total{reason="oversized"} 0)",
      R"(trading_selfheal_events_gap_total 2)",
  };
  for (const auto& l : expected) EXPECT_TRUE(has_line(text, l)) << "missing: " << l << "\n" << text;
  EXPECT_EQ(text.find("instance="), std::string::npos);
  // Every family has help text.
  std::istringstream in(text);
  int help = 0, type = 0;
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("# HELP ", 0) == 0) {
      ++help;
      EXPECT_GT(l.size(), std::string("# HELP x y").size()) << l;
    }
    if (l.rfind("# TYPE ", 0) == 0) ++type;
  }
  EXPECT_EQ(help, type);
  EXPECT_GE(help, 19);

  // promtool on the same exposition (skipped when promtool is not installed).
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "no promtool";
  const std::string path = ::testing::TempDir() + "/exporter-exposition.prom";
  std::ofstream(path) << text;
  const std::string cmd = "promtool check metrics < " + path + " > " + path + ".out 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream out(path + ".out");
  std::stringstream report_text;
  report_text << out.rdbuf();
  EXPECT_EQ(rc, 0) << report_text.str();
  EXPECT_EQ(report_text.str(), "") << "promtool reported problems";
}

TEST(MetricsModel, TheReferenceNamesEveryFamilyWithItsType) {
  std::ifstream in(test::Bed::source_dir() + "/docs/reference.md");
  std::stringstream doc;
  doc << in.rdbuf();
  const std::string text = doc.str();
  const auto begin = text.find("<!-- metrics:");
  const auto end = text.find("<!-- metrics end -->");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  const std::string table = text.substr(begin, end - begin);
  std::map<std::string, std::string> documented;
  const std::regex row(R"(\| `([a-z_]+)` \| ([a-z]+) \|)");
  for (auto it = std::sregex_iterator(table.begin(), table.end(), row);
       it != std::sregex_iterator(); ++it) {
    documented[(*it)[1]] = (*it)[2];
  }
  prometheus::Registry reg;
  MetricsModel m(reg, fleet());  // every configured agent's series exist from the start
  std::map<std::string, std::string> exported;
  for (const auto& f : reg.Collect()) {
    static const std::map<prometheus::MetricType, std::string> kTypes = {
        {prometheus::MetricType::Counter, "counter"},
        {prometheus::MetricType::Gauge, "gauge"},
        {prometheus::MetricType::Histogram, "histogram"}};
    exported[f.name] = kTypes.count(f.type) != 0 ? kTypes.at(f.type) : "other";
  }
  EXPECT_GE(exported.size(), 20U);
  EXPECT_EQ(documented, exported) << "docs/reference.md's metrics table and the exporter differ";
}

TEST(MetricsModel, LabelValuesAreBounded) {
  prometheus::Registry reg;
  MetricsModel m(reg, {});
  auto bad = event("restart", "BTC_USDT");
  bad.symbol = "BTC\"USDT\n";
  m.on_event(bad);
  EXPECT_EQ(m.dropped_labels(), 1u);
  for (int i = 0; i < 200; ++i)
    m.on_event(event("action_" + std::string(1, char('a' + i % 26)) + std::string(i / 26 + 1, 'x'),
                     "BTC_USDT"));
  const std::string text = exposition(reg);
  EXPECT_TRUE(has_line(
      text,
      R"(trading_selfheal_actions_total{action="other",host="localhost",symbol="BTC-USDT"} 136)"))
      << text.substr(0, 2000);
}

TEST(MetricsModel, ThousandAgentsScrapeIsFast) {
  prometheus::Registry reg;
  std::vector<common::AgentSpec> agents;
  for (int i = 0; i < 1000; ++i) {
    common::AgentSpec a;
    a.instance = "C" + std::to_string(i) + "_USDT";
    std::tie(a.symbol, a.profile) = common::symbol_and_profile(a.instance);
    agents.push_back(a);
  }
  MetricsModel m(reg, agents);
  for (const auto& a : agents) m.on_health(report(a.instance, proto::Verdict::kHealthy, 3));
  EXPECT_EQ(m.agents(), 1000u);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string text = exposition(reg);
  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
  EXPECT_TRUE(has_line(text, R"(trading_agent_up{host="localhost",symbol="C999-USDT"} 1)"));
  std::printf("collect+serialize 1000 agents: %.2f ms, %zu bytes\n", ms.count(), text.size());
  EXPECT_LT(ms.count(), 200.0);  // generous bound for sanitizer builds; the bench measures
}

// The model's own rendering must be TextSerializer's exposition: the same HELP/TYPE lines in the
// same order and the same series lines (the order of series within a family is free).
void expect_same_exposition(const std::string& rendered, const std::string& reference) {
  auto split = [](const std::string& text, std::vector<std::string>* comments) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
      if (l.rfind('#', 0) == 0) comments->push_back(l);
      lines.push_back(l);
    }
    std::sort(lines.begin(), lines.end());
    return lines;
  };
  std::vector<std::string> c1, c2;
  const auto l1 = split(rendered, &c1);
  const auto l2 = split(reference, &c2);
  EXPECT_EQ(c1, c2);
  ASSERT_EQ(l1.size(), l2.size());
  for (std::size_t i = 0; i < l1.size(); ++i) EXPECT_EQ(l1[i], l2[i]);
  // Each family's series follow its TYPE line (no series moved across families).
  std::string family;
  std::istringstream in(rendered);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("# TYPE ", 0) == 0) family = l.substr(7, l.find(' ', 7) - 7);
    if (l.rfind('#', 0) != 0) {
      EXPECT_EQ(l.rfind(family, 0), 0u) << l;
    }
  }
  EXPECT_TRUE(rendered.empty() || rendered.back() == '\n');
}

TEST(MetricsModel, RenderIsTheTextSerializerExposition) {
  prometheus::Registry reg;
  MetricsModel m(reg, fleet());
  expect_same_exposition(m.render(), exposition(reg));  // before any report: no gauges yet
  m.on_health(report("BTC_USDT", proto::Verdict::kHealthy, 12.5));
  m.on_health(report("ETH_USDT", proto::Verdict::kStalled, 0.1 + 0.2));
  m.on_health(report("BTC_USDT_conservative", proto::Verdict::kDown, std::nullopt));
  auto diag = event("diagnosis", "ETH_USDT");
  diag.fields["latency_seconds"] = 1.0 / 3;
  diag.fields["source"] = std::string("llm");
  m.on_event(diag);
  auto oerr = event("ollama_error", "BTC_USDT_conservative", false);
  oerr.fields["latency_seconds"] = 1e21;  // beyond the last bucket
  m.on_event(oerr);
  m.on_event(event("restart", "ETH_USDT"));
  m.on_event(event("Weird Action!", "ETH_USDT"));
  m.on_event(event("global_incident", ""));
  proto::Heartbeat hb;
  hb.component = "probe";
  hb.stats["cycle_seconds"] = 12345678901234567.0;
  m.on_heartbeat(hb);
  m.set_component_up("diagnoser", false);
  m.set_component_up("odd\"comp\\onent\n", true);  // escaping
  m.set_rejected(proto::Reject::kMalformed, 5);
  m.add_gaps(2);
  m.add_audit_written(40);
  m.add_audit_write_error();
  m.add_duplicates(3);
  m.set_deferred(1);
  const std::string rendered = m.render();
  expect_same_exposition(rendered, exposition(reg));
  EXPECT_TRUE(has_line(
      rendered, R"(trading_selfheal_probe_cycle_seconds{host="localhost"} 1.234567890123457e+16)"));
  EXPECT_TRUE(has_line(
      rendered,
      R"(trading_agent_last_decision_age_seconds{host="localhost",symbol="ETH-USDT"} 0.3)"));
  EXPECT_TRUE(
      has_line(rendered, R"(trading_ollama_analysis_duration_seconds_bucket{le="+Inf"} 2)"));
}

TEST(MetricsModel, ThousandAgentsRenderIsFastAndExact) {
  prometheus::Registry reg;
  std::vector<common::AgentSpec> agents;
  for (int i = 0; i < 1000; ++i) {
    common::AgentSpec a;
    a.instance = "C" + std::to_string(i) + (i % 10 == 0 ? "_USDT_aggressive" : "_USDT");
    std::tie(a.symbol, a.profile) = common::symbol_and_profile(a.instance);
    agents.push_back(a);
  }
  MetricsModel m(reg, agents);
  for (const auto& a : agents) {
    m.on_health(report(a.instance, proto::Verdict::kHealthy, 3));
    auto diag = event("diagnosis", a.instance);
    diag.fields["latency_seconds"] = 2.5;
    m.on_event(diag);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::string text = m.render();
  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
  std::printf("render 1000 agents: %.2f ms, %zu bytes\n", ms.count(), text.size());
  EXPECT_TRUE(has_line(text, R"(trading_agent_up{host="localhost",symbol="C999-USDT"} 1)"));
  EXPECT_TRUE(has_line(
      text, R"(trading_agent_up{host="localhost",profile="aggressive",symbol="C990-USDT"} 1)"));
  EXPECT_LT(ms.count(), 100.0);  // generous bound for sanitizer builds; the bench measures
  expect_same_exposition(text, exposition(reg));
}

// render() from another thread while the loop thread creates series (run under the sanitizers).
TEST(MetricsModel, RenderWhileUpdating) {
  prometheus::Registry reg;
  MetricsModel m(reg, {});
  std::atomic<bool> done{false};
  std::size_t renders = 0;
  std::thread scraper([&] {
    do {
      const std::string text = m.render();
      EXPECT_TRUE(text.empty() || text.back() == '\n');
      ++renders;
    } while (!done);
  });
  for (int i = 0; i < 300; ++i) {
    m.on_health(report("S" + std::to_string(i) + "_USDT", proto::Verdict::kHealthy, 1));
    m.on_event(event("restart", "S" + std::to_string(i) + "_USDT"));
  }
  done = true;
  scraper.join();
  EXPECT_GT(renders, 0u);
  EXPECT_TRUE(has_line(
      m.render(),
      R"(trading_selfheal_actions_total{action="restart",host="localhost",symbol="S299-USDT"} 1)"));
}

// Many hosts: the delay of the hosts' health reports (the centre's clock minus the sender's
// envelope time). A host's clock ahead of the centre's counts as 0; a non-finite delay (a
// report without a time) is not counted.
TEST(MetricsModel, ReportDelayIsAHistogramWithoutLabels) {
  prometheus::Registry reg;
  MetricsModel m(reg, {}, "centre");
  EXPECT_TRUE(has_line(m.render(), "trading_selfheal_report_delay_seconds_count 0"))
      << "present before the first report";
  for (double d : {0.0003, 0.004, 0.004, 0.2, -1.5, 100.0, std::numeric_limits<double>::quiet_NaN(),
                   std::numeric_limits<double>::infinity()}) {
    m.observe_report_delay(d);
  }
  const std::string text = m.render();
  for (const char* l : {
           R"(trading_selfheal_report_delay_seconds_count 6)",
           R"(trading_selfheal_report_delay_seconds_sum 100.2083)",
           R"(trading_selfheal_report_delay_seconds_bucket{le="0.0005"} 2)",
           R"(trading_selfheal_report_delay_seconds_bucket{le="0.001"} 2)",
           R"(trading_selfheal_report_delay_seconds_bucket{le="0.005"} 4)",
           R"(trading_selfheal_report_delay_seconds_bucket{le="0.25"} 5)",
           R"(trading_selfheal_report_delay_seconds_bucket{le="30"} 5)",
           R"(trading_selfheal_report_delay_seconds_bucket{le="+Inf"} 6)",
       }) {
    EXPECT_TRUE(has_line(text, l)) << "missing: " << l << "\n" << text;
  }
  expect_same_exposition(text, exposition(reg));
}

// Bus reconnects come as per-process cumulative counts in heartbeats: lost heartbeats lose
// nothing, repeats add nothing, a restarted sender (new boot id) counts from 0 again.
TEST(MetricsModel, BusReconnectsAreCountedAcrossHeartbeatsAndSenderRestarts) {
  prometheus::Registry reg;
  MetricsModel m(reg, fleet());
  const auto line = [&](const std::string& c, int n) {
    return "trading_selfheal_bus_reconnects_total{component=\"" + c + "\",host=\"localhost\"} " +
           std::to_string(n);
  };
  EXPECT_TRUE(has_line(m.render(), line("probe", 0))) << "absent before the first loss";
  EXPECT_TRUE(has_line(m.render(), line("actuator", 0)));
  auto hb = [&](const std::string& c, double n, const std::string& boot) {
    proto::Heartbeat h;
    h.component = c;
    h.stats["bus_reconnects"] = n;
    m.on_heartbeat(h, boot);
  };
  hb("probe", 0, "b1");
  hb("probe", 1, "b1");
  hb("probe", 1, "b1");  // the same total again
  hb("probe", 3, "b1");  // a heartbeat in between was lost
  EXPECT_TRUE(has_line(m.render(), line("probe", 3)));
  hb("probe", 1, "b2");  // restarted: its own count from 0
  EXPECT_TRUE(has_line(m.render(), line("probe", 4)));
  hb("actuator", 2, "a1");
  hb("actuator", -5, "a1");  // nonsense is ignored
  hb("diagnoser", 7, "d1");  // no bus: no series
  const std::string text = m.render();
  EXPECT_TRUE(has_line(text, line("actuator", 2)));
  EXPECT_EQ(text.find("component=\"diagnoser\"} 7"), std::string::npos);
  expect_same_exposition(text, exposition(reg));
}

// Refused peers: each daemon's cumulative count from its heartbeats, the exporter's own set
// directly; every component's series exists from the first scrape.
TEST(MetricsModel, RefusedPeersAreCountedPerComponent) {
  prometheus::Registry reg;
  MetricsModel m(reg, fleet());
  const auto line = [&](const std::string& c, int n) {
    return "trading_selfheal_peers_refused_total{component=\"" + c + "\",host=\"localhost\"} " +
           std::to_string(n);
  };
  for (const char* c : {"probe", "diagnoser", "actuator", "exporter"}) {
    EXPECT_TRUE(has_line(m.render(), line(c, 0))) << c;
  }
  auto hb = [&](const std::string& c, double n, const std::string& boot) {
    proto::Heartbeat h;
    h.component = c;
    h.stats["peers_refused"] = n;
    m.on_heartbeat(h, boot);
  };
  hb("actuator", 2, "a1");
  hb("actuator", 5, "a1");
  hb("actuator", 1, "a2");  // restarted
  hb("diagnoser", 3, "d1");
  hb("exporter", 9, "e1");  // the exporter's own count is not taken from the bus
  hb("intruder", 4, "x1");  // no such component: no series
  m.set_own_peers_refused(2);
  m.set_own_peers_refused(2);
  m.set_own_peers_refused(4);
  const std::string text = m.render();
  EXPECT_TRUE(has_line(text, line("actuator", 6)));
  EXPECT_TRUE(has_line(text, line("diagnoser", 3)));
  EXPECT_TRUE(has_line(text, line("probe", 0)));
  EXPECT_TRUE(has_line(text, line("exporter", 4)));
  EXPECT_EQ(text.find("intruder"), std::string::npos);
  expect_same_exposition(text, exposition(reg));
}

// Before any report or event: every per-agent family has a series for each configured agent
// (counters at 0, gauges NaN: "not known yet"), and promtool accepts the exposition.
TEST(MetricsModel, TheFirstScrapeHasEverySeriesOfEveryConfiguredAgent) {
  prometheus::Registry reg;
  MetricsModel m(reg, fleet());
  const std::string text = m.render();
  const std::vector<std::string> labels = {
      R"(host="localhost",symbol="BTC-USDT")", R"(host="localhost",symbol="ETH-USDT")",
      R"(host="localhost",profile="conservative",symbol="BTC-USDT")"};
  for (const char* family :
       {"trading_agent_up", "trading_agent_stalled", "trading_agent_last_decision_age_seconds",
        "trading_ollama_analyze_total", "trading_ollama_analysis_latency_seconds",
        "trading_agent_restart_total", "trading_agent_consecutive_failures",
        "trading_agent_rss_bytes", "trading_agent_cpu_ratio", "trading_agent_heartbeat_age_seconds",
        "trading_agent_stopped", "trading_agent_unit_restarts_total"}) {
    for (const auto& l : labels) {
      const std::string prefix = std::string(family) + "{" + l + "} ";
      EXPECT_NE(text.find("\n" + prefix), std::string::npos) << "missing " << prefix;
    }
  }
  for (const proto::Action action : kAgentActions) {
    EXPECT_TRUE(has_line(text, R"(trading_selfheal_actions_total{action=")" + proto::name(action) +
                                   R"(",host="localhost",symbol="ETH-USDT"} 0)"))
        << proto::name(action);
  }
  EXPECT_TRUE(
      has_line(text, R"(trading_agent_restart_total{host="localhost",symbol="BTC-USDT"} 0)"));
  EXPECT_TRUE(has_line(text, R"(trading_agent_up{host="localhost",symbol="BTC-USDT"} Nan)"));
  expect_same_exposition(text, exposition(reg));
  const std::string file = ::testing::TempDir() + "first-scrape.prom";
  std::ofstream(file) << text;
  EXPECT_EQ(std::system(("promtool check metrics < " + file + " >" + file + ".out 2>&1").c_str()),
            0)
      << std::ifstream(file + ".out").rdbuf();
}

// systemd's NRestarts becomes a counter that survives the unit's resets of it; a stopped agent
// says so (TradingAgentDown must not page for an operator's stop).
TEST(MetricsModel, UnitRestartsCountAcrossResetsAndStoppedIsExported) {
  prometheus::Registry reg;
  MetricsModel m(reg, fleet());
  auto with = [](std::uint32_t n, proto::Verdict v = proto::Verdict::kHealthy) {
    auto r = report("ETH_USDT", v, 3);
    r.n_restarts = n;
    return r;
  };
  m.on_health(with(2));  // seen first with 2: the counter starts there
  m.on_health(with(2));
  m.on_health(with(5));
  m.on_health(with(0));  // reset (a manual start, our restart): nothing lost
  m.on_health(with(1));
  std::string text = m.render();
  EXPECT_TRUE(
      has_line(text, R"(trading_agent_unit_restarts_total{host="localhost",symbol="ETH-USDT"} 6)"))
      << text;
  EXPECT_TRUE(has_line(text, R"(trading_agent_stopped{host="localhost",symbol="ETH-USDT"} 0)"));
  m.on_health(with(1, proto::Verdict::kStopped));
  text = m.render();
  EXPECT_TRUE(has_line(text, R"(trading_agent_stopped{host="localhost",symbol="ETH-USDT"} 1)"));
  EXPECT_TRUE(
      has_line(text, R"(trading_agent_unit_restarts_total{host="localhost",symbol="ETH-USDT"} 6)"));
  expect_same_exposition(text, exposition(reg));
}

// Many hosts: a host's series carry its name; when it falls silent its agents' gauges become
// unknown (NaN), host_up says 0, and the local host's agents are not touched.
TEST(MetricsModel, EverySeriesCarriesItsHostAndASilentHostsAgentsAreUnknown) {
  prometheus::Registry reg;
  MetricsModel m(reg, fleet(), "centre");
  m.on_health(report("BTC_USDT", proto::Verdict::kHealthy, 12.5), "alpha");
  m.on_health(report("BTC_USDT", proto::Verdict::kHealthy, 3));
  m.on_event(event("restart", "ETH_USDT"), "alpha");
  m.set_host_up("alpha", true);
  std::string text = m.render();
  EXPECT_TRUE(has_line(text, R"(trading_agent_up{host="alpha",symbol="BTC-USDT"} 1)")) << text;
  EXPECT_TRUE(has_line(text, R"(trading_agent_up{host="centre",symbol="BTC-USDT"} 1)"));
  EXPECT_TRUE(has_line(text, R"(trading_agent_restart_total{host="alpha",symbol="ETH-USDT"} 1)"));
  EXPECT_TRUE(has_line(text, R"(trading_agent_restart_total{host="centre",symbol="ETH-USDT"} 0)"));
  EXPECT_TRUE(has_line(text, R"(trading_selfheal_host_up{host="alpha"} 1)"));
  EXPECT_TRUE(has_line(text, R"(trading_selfheal_host_up{host="centre"} 1)"));

  m.set_host_up("alpha", false);
  text = m.render();
  EXPECT_TRUE(has_line(text, R"(trading_selfheal_host_up{host="alpha"} 0)"));
  EXPECT_TRUE(has_line(text, R"(trading_agent_up{host="alpha",symbol="BTC-USDT"} Nan)")) << text;
  EXPECT_TRUE(has_line(text, R"(trading_agent_up{host="centre",symbol="BTC-USDT"} 1)"));
  m.on_health(report("BTC_USDT", proto::Verdict::kHealthy, 12.5), "alpha");
  EXPECT_TRUE(has_line(m.render(), R"(trading_agent_up{host="alpha",symbol="BTC-USDT"} 1)"));
}

TEST(MetricsModel, HostNamesAreBoundedAndChecked) {
  prometheus::Registry reg;
  MetricsModel m(reg, {}, "centre");
  m.on_health(report("BTC_USDT", proto::Verdict::kHealthy, 1), "bad host\"}");
  EXPECT_EQ(m.dropped_labels(), 1u);
  for (std::size_t i = 0; i < kMaxHosts + 10; ++i) {
    m.set_host_up("h" + std::to_string(i), true);
  }
  EXPECT_EQ(m.dropped_labels(), 12u) << "centre + 255 others, then refused";
}

}  // namespace
}  // namespace trading_heal::exporter
