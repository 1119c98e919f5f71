// trading-heal-replay: what trading-heal would have done with a fleet's real history.
#include <time.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "compare.hpp"
#include "replay.hpp"
#include "report.hpp"
#include "rhythm.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/common/guarded_main.hpp"
#include "trading_heal/common/settings.hpp"

namespace {

namespace common = trading_heal::common;
namespace replay = trading_heal::replay;
using nlohmann::json;
using namespace trading_heal::replay;  // the report functions (report.hpp)

constexpr const char* kUsage =
    R"(usage: trading-heal-replay (--csv FILE | --database-url URL --from T --to T)
                           [--set NAME=V1,V2,...] [--outage FROM,TO]... [--json] [--findings]
                           [--rhythm]
       trading-heal-replay --compare-audit AUDIT --journal JOURNAL [--window S] [--restarts]

Replays a fleet's decisions (btc.decisions: timestamp, symbol, profile) through the probe's
verdict logic and the actuator's engine with simulated time, at many times real speed, with no
D-Bus, no restarts and no model (the restart waits TRADING_HEAL_DIAGNOSIS_WAIT, as with the model
down). Prints, per agent: the restarts it would have made (needless: decisions resumed on their
own within 5 min), what it would have held (rate limit, exhausted, global incident), and the
history's stalls (gaps longer than the threshold) it caught, with the detection delay, or missed.

  --csv FILE            timestamp,symbol,profile lines (psql: \copy (SELECT timestamp, symbol,
                        profile FROM btc.decisions WHERE ...) TO FILE WITH CSV)
  --database-url URL    read btc.decisions from PostgreSQL (default: DATABASE_URL)
  --from T, --to T      the range: epoch seconds or YYYY-MM-DDTHH:MM:SSZ
  --set NAME=V1,V2,...  replay once per value of a policy setting and compare them side by side
                        (e.g. TRADING_HEAL_STALL_THRESHOLD=300,600,900,auto; auto learns each
                        agent's threshold from the whole replayed history)
  --outage FROM,TO      the database did not answer then (repeatable)
  --journal JOURNAL     the restarts that really happened (journalctl -o json export): each
                        starts a new process, and a would-be restart followed by one before the
                        decisions came back is not counted needless
  --model-seconds S     the diagnosis arrives S seconds after it is asked (default 0: the model
                        at once, or down and the rules answering); --model-seconds never: a
                        hanging model (every restart waits TRADING_HEAL_DIAGNOSIS_WAIT)
  --findings            also every restart, hold and missed stall, one line each
  --rhythm              instead: each agent's gaps between decisions (median, p99, p99.9, max),
                        whether they depend on the hour, and the stall threshold its history
                        suggests: what TRADING_HEAL_STALL_THRESHOLD=auto learns (the probe's
                        rule: the larger of _MIN and 3 x its p99.9 gap, at most _MAX; from 1000
                        gaps over 24 h), with the stalls that and the configured one would raise
  --compare-audit AUDIT  instead: trading-heal in shadow mode (TRADING_HEAL_MODE=shadow) beside
                        the healer in charge: its audit's would_restart records against the
                        restart jobs of crypto-agent@ units in JOURNAL (journalctl -o json
                        [--user] --since ... > JOURNAL); agreed within --window S (default 300),
                        or only one of the two; --restarts: its restart records too
  --json                machine-readable output
  -h, --help            this text

The policy is the environment's (the settings below), as the daemons read it.
Exit status: 0 done, 64 bad usage, 78 bad configuration, 1 the history could not be read.
)";

int usage(const std::string& msg) {
  std::cerr << "trading-heal-replay: " << msg << "\n(try --help)\n";
  return 64;
}

std::optional<double> parse_time(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() && *end == '\0' && std::isfinite(v) && v > 0) return v;
  std::tm tm{};
  const char* rest = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr || (*rest != '\0' && std::string(rest) != "Z")) return std::nullopt;
  return static_cast<double>(::timegm(&tm));
}

tl::expected<replay::History, std::string> read_database(const std::string& url, double from,
                                                         double to) {
  try {
    pqxx::connection c(url);
    pqxx::read_transaction t(c);
    const pqxx::result rows = t.exec_params(
        "SELECT timestamp, symbol, coalesce(profile, 'default') FROM btc.decisions "
        "WHERE timestamp >= $1 AND timestamp < $2 ORDER BY timestamp",
        from, to);
    std::ostringstream csv;
    for (const auto& row : rows) {
      csv.precision(17);
      csv << row[0].as<double>() << ',' << row[1].c_str() << ',' << row[2].c_str() << '\n';
    }
    auto h = replay::parse_csv(csv.str());
    if (!h)
      return tl::unexpected("btc.decisions from " + iso(from) + " to " + iso(to) + ": " +
                            h.error());
    return h;
  } catch (const std::exception& e) {
    return tl::unexpected(std::string("cannot read btc.decisions: ") + e.what());
  }
}

std::optional<std::string> slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int compare_audit(const std::string& audit_path, const std::string& journal_path, double window,
                  bool with_restarts, bool as_json) {
  const auto audit = slurp(audit_path);
  const auto journal = slurp(journal_path);
  if (!audit || !journal) {
    std::cerr << "trading-heal-replay: cannot read " << (!audit ? audit_path : journal_path)
              << "\n";
    return 1;
  }
  auto ours = replay::audit_actions(*audit, with_restarts);
  if (!ours) {
    std::cerr << "trading-heal-replay: " << audit_path << ": " << ours.error() << "\n";
    return 1;
  }
  auto theirs = replay::journal_restarts(*journal);
  if (!theirs) {
    std::cerr << "trading-heal-replay: " << journal_path << ": " << theirs.error() << "\n";
    return 1;
  }
  const auto c = replay::compare(*ours, *theirs, window);
  PerAgent per;
  for (const auto& [o, t] : c.agreed) ++per[o.agent][0];
  for (const auto& o : c.only_ours) ++per[o.agent][1];
  for (const auto& t : c.only_theirs) ++per[t.agent][2];
  print_comparison(c, per, window, as_json);
  return 0;
}

int print_rhythm(const replay::History& h, bool as_json) {
  auto cfg = common::load_config(common::process_env());
  if (!cfg) {
    std::cerr << "trading-heal-replay: configuration error: " << cfg.error().to_string() << "\n";
    return 78;
  }
  const double fixed = std::chrono::duration<double>(cfg->stall_threshold).count();
  // The probe's rule with the configured bounds (TRADING_HEAL_STALL_THRESHOLD_MIN/_MAX): what
  // TRADING_HEAL_STALL_THRESHOLD=auto would learn from this history.
  replay::RhythmOptions rule;
  rule.min_s = std::chrono::duration<double>(cfg->stall_threshold_min).count();
  rule.max_s = std::chrono::duration<double>(cfg->stall_threshold_max).count();
  const auto rs = replay::rhythms(h, rule);
  json out = json::array();
  if (!as_json) {
    std::printf("%-24s %9s %8s %8s %8s %9s %12s %11s %11s  %s\n", "agent", "gaps", "median", "p99",
                "p99.9", "max", "recommended", "raises", "at fixed", "by hour (UTC)");
  }
  for (std::size_t i = 0; i < rs.size(); ++i) {
    std::vector<double> ts = h.series[i].ts;
    std::sort(ts.begin(), ts.end());
    std::size_t at_fixed = 0;
    for (std::size_t k = 1; k < ts.size(); ++k) at_fixed += ts[k] - ts[k - 1] > fixed ? 1 : 0;
    if (as_json) {
      out.push_back(rhythm_json(rs[i], at_fixed));
    } else {
      print_rhythm_row(rs[i], at_fixed);
    }
  }
  if (as_json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf(
      "(recommended: max(%.0f s, %.0f x the p99.9 gap of the active hours), at most %.0f s, from "
      "%zu gaps over %.0f h, as TRADING_HEAL_STALL_THRESHOLD=auto learns it; raises: gaps "
      "longer than the recommendation; at fixed: longer than the configured %.0f s. quiet H: "
      "hours whose p99 gap is over 10x the busiest hour's; the recommendation comes from the "
      "other hours, one threshold cannot fit every hour)\n",
      rule.min_s, rule.k, rule.max_s, rule.min_gaps, rule.min_span_s / 3600, fixed);
  return 0;
}

// The command line, checked; the error is the usage message.
struct Cli {
  std::string csv_path, url, audit_path, journal_path, set_name;
  std::optional<double> from, to;
  std::vector<std::string> set_values;
  std::vector<std::pair<double, double>> outages;
  bool as_json = false, findings = false, rhythm = false, with_restarts = false, help = false;
  double window = 300;
  double model_seconds = 0;
  bool model_never = false;
};

std::optional<std::string> parse_value(Cli& c, const std::string& a, const std::string& v) {
  if (a == "--compare-audit") {
    c.audit_path = v;
  } else if (a == "--journal") {
    c.journal_path = v;
  } else if (a == "--csv") {
    c.csv_path = v;
  } else if (a == "--database-url") {
    c.url = v;
  } else if (a == "--model-seconds") {
    char* end = nullptr;
    c.model_never = v == "never";
    c.model_seconds = c.model_never ? 0 : std::strtod(v.c_str(), &end);
    if (!c.model_never && (*end != '\0' || !(c.model_seconds >= 0) || c.model_seconds > 3600)) {
      return "--model-seconds wants seconds 0-3600 or never; got " + v;
    }
  } else if (a == "--window") {
    char* end = nullptr;
    c.window = std::strtod(v.c_str(), &end);
    if (*end != '\0' || !(c.window > 0)) return "--window wants seconds > 0; got " + v;
  } else if (a == "--from" || a == "--to") {
    auto t = parse_time(v);
    if (!t) return a + " " + v + ": want epoch seconds or YYYY-MM-DDTHH:MM:SSZ";
    (a == "--from" ? c.from : c.to) = t;
  } else if (a == "--set") {
    const auto eq = v.find('=');
    if (eq == std::string::npos || eq == 0) return "--set wants NAME=V1,V2,...; got " + v;
    c.set_name = v.substr(0, eq);
    std::stringstream vs(v.substr(eq + 1));
    for (std::string x; std::getline(vs, x, ',');) {
      if (!x.empty()) c.set_values.push_back(x);
    }
    if (c.set_values.empty()) return "--set " + c.set_name + " has no values";
  } else if (a == "--outage") {
    const auto comma = v.find(',');
    auto f = comma == std::string::npos ? std::nullopt : parse_time(v.substr(0, comma));
    auto t = comma == std::string::npos ? std::nullopt : parse_time(v.substr(comma + 1));
    if (!f || !t || *t <= *f) return "--outage wants FROM,TO (FROM before TO); got " + v;
    c.outages.emplace_back(*f, *t);
  } else {
    return "unknown argument " + a;
  }
  return std::nullopt;
}

tl::expected<Cli, std::string> parse_cli(const std::vector<std::string>& args) {
  Cli c;
  const std::map<std::string, bool*> flags = {
      {"--json", &c.as_json},  {"--findings", &c.findings},
      {"--rhythm", &c.rhythm}, {"--restarts", &c.with_restarts},
      {"-h", &c.help},         {"--help", &c.help}};
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (auto f = flags.find(args[i]); f != flags.end()) {
      *f->second = true;
    } else if (args[i].rfind("--", 0) == 0 && i + 1 < args.size()) {
      if (auto e = parse_value(c, args[i], args[i + 1])) return tl::unexpected(*e);
      ++i;
    } else {
      return tl::unexpected("unknown argument " + args[i]);
    }
  }
  if (c.help || !c.audit_path.empty()) return c;
  if (c.csv_path.empty() && c.url.empty()) {
    if (const char* env = std::getenv("DATABASE_URL"); env != nullptr && *env) c.url = env;
  }
  if (c.csv_path.empty() && c.url.empty())
    return tl::unexpected(std::string("give --csv FILE or --database-url URL"));
  if (!c.csv_path.empty() && !c.url.empty())
    return tl::unexpected(std::string("--csv and --database-url exclude each other"));
  if (!c.url.empty() && (!c.from || !c.to))
    return tl::unexpected(std::string("--database-url needs --from and --to"));
  return c;
}

tl::expected<replay::History, std::string> load_history(const Cli& c) {
  tl::expected<replay::History, std::string> h;
  if (!c.csv_path.empty()) {
    const auto text = slurp(c.csv_path);
    if (!text) return tl::unexpected("cannot read " + c.csv_path);
    h = replay::parse_csv(*text);
    if (!h) return tl::unexpected(c.csv_path + ": " + h.error());
  } else {
    // Two hours before the range too: at its start each agent's newest decision is known.
    h = read_database(c.url, *c.from - 7200, *c.to);
    if (!h) return h;
  }
  if (!c.journal_path.empty()) {
    const auto text = slurp(c.journal_path);
    if (!text) return tl::unexpected("cannot read " + c.journal_path);
    auto restarts = replay::journal_restarts(*text);
    if (!restarts) return tl::unexpected(c.journal_path + ": " + restarts.error());
    for (const auto& a : *restarts) h->restarts.emplace_back(a.agent, a.at);
  }
  if (c.from) h->from = *c.from;
  if (c.to) h->to = *c.to;
  h->db_outages = c.outages;
  return h;
}

// One replay with `value` for the --set setting (none: the environment's policy as it is).
tl::expected<replay::Result, int> replay_with(const Cli& c, const replay::History& h,
                                              const std::string& value) {
  auto cfg = common::load_config([&](const std::string& name) -> std::optional<std::string> {
    if (!c.set_name.empty() && name == c.set_name) return value;
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
  });
  if (!cfg) {
    std::cerr << "trading-heal-replay: configuration error: " << cfg.error().to_string() << "\n";
    return tl::unexpected(78);
  }
  const std::string label = c.set_name.empty() ? "" : c.set_name + "=" + value;
  replay::Options opts;
  opts.diagnosis = !c.model_never;
  opts.model_seconds = c.model_seconds;
  const auto t0 = std::chrono::steady_clock::now();
  auto shown = t0;  // a progress line on a terminal, at most once a second of wall time
  opts.progress = [&](double at) {
    const auto now = std::chrono::steady_clock::now();
    if (::isatty(STDERR_FILENO) == 0 || now - shown < std::chrono::seconds(1)) return;
    shown = now;
    std::fprintf(stderr, "\rreplaying %s at %s", label.c_str(), iso(at).c_str());
  };
  auto r = replay::run(h, *cfg, opts);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "\r%s%sreplayed %.1f days in %.2f s (%llu checks)\n", label.c_str(),
               label.empty() ? "" : ": ", (r.to - r.from) / 86400, wall,
               static_cast<unsigned long long>(r.checks));
  return r;
}

int what_if(const Cli& c, const replay::History& h) {
  std::vector<std::string> values = c.set_values;
  if (values.empty()) values.push_back("");
  std::vector<std::pair<std::string, replay::Result>> results;
  for (const auto& value : values) {
    auto r = replay_with(c, h, value);
    if (!r) return r.error();
    results.emplace_back(value, std::move(*r));
  }
  if (c.as_json) {
    json out = json::array();
    for (const auto& [value, r] : results) {
      json j = to_json(r, c.findings);
      if (!c.set_name.empty()) j["set"] = {{c.set_name, value}};
      out.push_back(j);
    }
    std::cout << (results.size() == 1 ? out[0] : out).dump(2) << "\n";
  } else if (results.size() == 1) {
    print_table(results[0].second, c.findings);
  } else {
    print_side_by_side(c.set_name, results);
  }
  return 0;
}

}  // namespace

int run_main(int argc, char** argv) {
  const auto cli = parse_cli({argv + 1, argv + argc});
  if (!cli) return usage(cli.error());
  if (cli->help) {
    std::cout << kUsage << common::settings_help(common::kProbe | common::kActuator);
    return 0;
  }
  if (!cli->audit_path.empty()) {
    if (cli->journal_path.empty()) return usage("--compare-audit needs --journal FILE");
    return compare_audit(cli->audit_path, cli->journal_path, cli->window, cli->with_restarts,
                         cli->as_json);
  }
  const auto history = load_history(*cli);
  if (!history) {
    std::cerr << "trading-heal-replay: " << history.error() << "\n";
    return 1;
  }
  return cli->rhythm ? print_rhythm(*history, cli->as_json) : what_if(*cli, *history);
}

int main(int argc, char** argv) {
  return trading_heal::common::guarded_main("trading-heal-replay",
                                            [&] { return run_main(argc, argv); });
}
