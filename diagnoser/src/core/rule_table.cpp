#include "trading_heal/diagnoser/rule_table.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <system_error>
#include <tl/expected.hpp>
#include <utility>

namespace trading_heal::diagnoser {
namespace {

using proto::DiagnosisAction;
using proto::Severity;

struct BuiltinRule {
  std::string_view category;
  Severity severity;
  DiagnosisAction action;
  std::string_view cause;
  std::initializer_list<std::string_view> keywords;  // lower case; any one matches
};

// deploy/rules/trading-heal.rules compiled in, in the same order (the priority order; the file
// says why each rule stands where it does). Changing one? Change the other the same way:
// rules_test.cpp fails until they mean the same, and add lines to tests/diagnoser/rules_corpus.tsv.
const std::array<BuiltinRule, 20> kBuiltin{{
    {"oom",
     Severity::kCritical,
     DiagnosisAction::kAutoRestart,
     "Out of memory: the agent was killed (OOM killer / MemoryError)",
     {"oom-kill", "oom_kill", "oom killer", "oom_reaper", "out of memory", "memoryerror",
      "killed process", "status=9/kill", "cannot allocate memory", "memória insuficiente"}},
    {"disk_full",
     Severity::kCritical,
     DiagnosisAction::kManual,
     "Disk full: no space left on device",
     {"no space left on device", "disk full", "diskfull", "disk is full", "could not extend file",
      "enospc", "disk quota exceeded", "disco cheio", "sem espaço em disco"}},
    {"read_only_fs",
     Severity::kCritical,
     DiagnosisAction::kManual,
     "Read-only file system: the agent cannot write its files (disk remounted read-only?)",
     {"read-only file system", "erofs", "[errno 30]", "remounting filesystem read-only",
      "somente leitura"}},
    {"module_missing",
     Severity::kHigh,
     DiagnosisAction::kManual,
     "Missing Python module, library or program after a deploy (ModuleNotFoundError / ImportError)",
     {"modulenotfounderror", "no module named", "importerror", "cannot import name",
      "cannot open shared object file", "can't open file", "status=203/exec", "failed at step exec",
      "failed to locate executable", "failed to spawn", "status=200/chdir",
      "módulo não encontrado"}},
    {"auth_failed",
     Severity::kHigh,
     DiagnosisAction::kManual,
     "Credentials rejected: exchange API key or database password (AuthenticationError)",
     {"authenticationerror",
      "permissiondenied",
      "accountsuspended",
      "accountnotenabled",
      "password authentication failed",
      "invalid api",
      "api key is invalid",
      "api-key format invalid",
      "eapi:invalid key",
      "invalid kc-api",
      "kc-api-key not exists",
      "not in the api whitelist",
      "signature for this request is not valid",
      "invalid signature",
      "signature error",
      "\" credential",
      "401 client error",
      "http 401",
      "status 401",
      "status_code=401",
      "unauthorized",
      "chave de api inv",
      "chave da api inv",
      "credenciais inv",
      "erro de autenticação",
      "falha de autenticação",
      "falha na autenticação",
      "api key inv",
      "credenciais da api inv"}},
    {"invalid_nonce",
     Severity::kHigh,
     DiagnosisAction::kManual,
     "Exchange rejected the nonce/timestamp (InvalidNonce: clock out of sync or a shared API key)",
     {"invalidnonce", "invalid nonce", "nonce inv", "recvwindow", "timestamp for this request",
      "kc-api-timestamp", "ahead of the server's time"}},
    {"insufficient_balance",
     Severity::kMedium,
     DiagnosisAction::kManual,
     "Insufficient balance on the exchange account (InsufficientFunds)",
     {"insufficientfunds", "insufficient balance", "insufficient funds",
      "insufficient wallet balance", "insufficient margin", "balance insufficient",
      "not enough balance", "saldo insuficiente", "fundos insuficientes", "insufficient usdt",
      "usdt insuficiente"}},
    {"permission_denied",
     Severity::kHigh,
     DiagnosisAction::kManual,
     "Permission denied: file permissions or database privileges",
     {"permissionerror", "permission denied", "[errno 13]", "insufficientprivilege",
      "must be owner of", "permissão negada"}},
    {"deadlock",
     Severity::kHigh,
     DiagnosisAction::kAutoRestart,
     "Database deadlock (DeadlockDetected / LockNotAvailable)",
     {"deadlockdetected", "deadlock detected", "locknotavailable", "lock not available"}},
    {"db_pool_exhausted",
     Severity::kHigh,
     DiagnosisAction::kAutoRestart,
     "Database connections exhausted (the agent's pool limit or the server's max_connections)",
     {"queuepool limit", "pool exhausted", "poolerror", "too many clients",
      "remaining connection slots", "too many connections", "pool de conexões esgotado",
      "pool esgotado"}},
    {"dns_failure",
     Severity::kHigh,
     DiagnosisAction::kWait,
     "Name resolution failed: the exchange or database host cannot be resolved (DNS)",
     {"temporary failure in name resolution", "name or service not known", "nodename nor servname",
      "could not translate host name", "nameresolutionerror", "failed to resolve", "gaierror",
      "getaddrinfo failed", "no address associated with hostname", "resolução de nome",
      "falha de dns", "erro de dns"}},
    {"tls_failure",
     Severity::kHigh,
     DiagnosisAction::kManual,
     "TLS failure: certificate verification or handshake (SSLError)",
     {"certificate_verify_failed", "certificate verify failed", "sslerror",
      "sslcertverificationerror", "sslv3 alert", "tlsv1 alert", "handshake failure",
      "wrong version number", "certificate has expired", "self-signed certificate",
      "self signed certificate", "unable to get local issuer certificate", "erro de certificado",
      "certificado ssl"}},
    {"connection_refused",
     Severity::kHigh,
     DiagnosisAction::kWait,
     "Connection refused or reset: the database or the exchange is unreachable",
     {"connection refused",
      "econnrefused",
      "could not connect to server",
      "connectionrefusederror",
      "is the server running",
      "\" failed: no such file or directory",
      "connection reset by peer",
      "connectionreseterror",
      "connection aborted",
      "remotedisconnected",
      "network is unreachable",
      "no route to host",
      "failed to connect",
      "could not connect",
      "unable to connect",
      "falha ao conectar",
      "erro ao conectar",
      "não foi possível conectar",
      "conexão recusada",
      "sem conexão com o banco",
      "sem conexão com a exchange",
      "the database system is starting up",
      "the database system is shutting down",
      "the database system is in recovery mode",
      "cannotconnectnow",
      "failed: timeout expired"}},
    {"db_connection_lost",
     Severity::kHigh,
     DiagnosisAction::kAutoRestart,
     "Database connection lost: closed by the server or dead in the agent (reconnect)",
     {"server closed the connection unexpectedly", "connection already closed",
      "terminating connection due to", "adminshutdown", "ssl syscall error",
      "ssl connection has been closed unexpectedly", "interfaceerror", "pendingrollbackerror",
      "connection not open", "lost connection to", "conexão com o banco de dados perdida",
      "conexão perdida"}},
    {"db_lock",
     Severity::kHigh,
     DiagnosisAction::kAutoRestart,
     "DB lock on decisions table (psycopg2.OperationalError)",
     {"lock timeout", "operationalerror", "could not obtain lock", "database is locked",
      "canceling statement due to lock", "lock wait timeout",
      "canceling statement due to statement timeout", "querycanceled"}},
    {"exchange_unavailable",
     Severity::kMedium,
     DiagnosisAction::kWait,
     "Exchange unavailable: maintenance or HTTP 5xx (ExchangeNotAvailable / OnMaintenance)",
     {"exchangenotavailable", "onmaintenance", "service unavailable", "bad gateway",
      "gateway time-out", "gateway timeout", "under maintenance", "system maintenance",
      "em manutenção", "exchange indisponível"}},
    {"crash",
     Severity::kHigh,
     DiagnosisAction::kAutoRestart,
     "Python crash",
     {"traceback (most recent call last)",
      "unhandled exception",
      "segmentation fault",
      "core dumped",
      "fatal python error",
      "code=dumped",
      "result 'core-dump'",
      "dumped core",
      "segfault at",
      "status=1/failure",
      "result 'exit-code'",
      "exceção não tratada",
      "erro fatal",
      "fatal error",
      "status=4/ill",
      "status=6/abrt",
      "status=7/bus",
      "status=8/fpe",
      "status=11/segv",
      "result 'signal'",
      "status=2/invalidargument"}},
    {"rate_limit",
     Severity::kMedium,
     DiagnosisAction::kWait,
     "Exchange rate limit (HTTP 429 Too Many Requests)",
     {"too many requests", "rate limit", "ratelimit", "http 429", "status 429", "error 429",
      "429 client error", "code=429", "status_code=429", "ddosprotection",
      "too much request weight", "limite de requisições", "muitas requisições"}},
    {"api_timeout",
     Severity::kMedium,
     DiagnosisAction::kAutoRestart,
     "Exchange API timeout (price unavailable)",
     {"price unavailable", "readtimeout", "read timed out", "connecttimeout", "urlopen error",
      "urllib", "timed out", "timeouterror", "requesttimeout", "preço indisponível",
      "preco indisponivel", "timeout ao", "tempo limite", "tempo esgotado", "(timeout)",
      "timeout na"}},
    {"thread_stall",
     Severity::kMedium,
     DiagnosisAction::kAutoRestart,
     "Trading loop stalled (thread stall / lock contention)",
     {"thread stall", "lock contention", "waiting for lock", "deadline exceeded", "hung task",
      "is hung", "stuck", "watchdog timeout", "result 'watchdog'", "blocked for more than",
      "travado", "heartbeat missed", "missed heartbeat"}},
}};

// Categories the classifier answers with when no rule matches: a rule must not claim them.
constexpr std::array<std::string_view, 3> kReserved = {"stall", "down", "unknown"};

constexpr std::string_view kBlanks = " \t";

std::string_view trim(std::string_view s) {
  const auto begin = s.find_first_not_of(" \t\r");
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

// The first word of `s` (up to a space or tab) and the rest, its leading blanks removed.
std::pair<std::string_view, std::string_view> split_word(std::string_view s) {
  const auto end = s.find_first_of(kBlanks);
  if (end == std::string_view::npos) return {s, {}};
  std::string_view rest = s.substr(end);
  rest.remove_prefix(std::min(rest.find_first_not_of(kBlanks), rest.size()));
  return {s.substr(0, end), rest};
}

// Only ASCII: std::tolower would depend on the process's locale and could rewrite UTF-8 bytes.
std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

bool valid_category(std::string_view c) {
  return !c.empty() && c.size() <= kMaxRuleCategoryBytes &&
         std::all_of(c.begin(), c.end(), [](char ch) {
           return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
         });
}

// An operator's text echoed in an error, bounded and without control characters.
std::string quoted(std::string_view s) {
  constexpr std::size_t kMax = 60;
  std::string out = "\"";
  for (char c : s.substr(0, kMax)) out.push_back(has_control({&c, 1}) ? '?' : c);
  if (s.size() > kMax) out += "...";
  return out + "\"";
}

class Parser {
 public:
  explicit Parser(std::string_view file) : file_(file) {}

  void line(std::size_t n, std::string_view text) {
    text = trim(text);
    if (text.empty() || text.front() == '#') return;
    const auto [directive, rest] = split_word(text);
    if (directive == "rule") {
      rule(n, rest);
    } else if (directive == "match") {
      match(n, rest);
    } else {
      error(n, "unknown directive " + quoted(directive) + " (expected rule or match)");
    }
  }

  ParsedRules finish() {
    close_rule();
    return std::move(out_);
  }

 private:
  void error(std::size_t n, std::string message) {
    out_.errors.push_back({std::string(file_), n, std::move(message)});
  }

  void close_rule() {
    if (!current_) return;
    if (current_->keywords.empty()) {
      error(current_line_, "rule " + current_->category + " has no match line; rule skipped");
    } else {
      out_.rules.push_back(std::move(*current_));
    }
    current_.reset();
  }

  void rule(std::size_t n, std::string_view rest) {
    close_rule();
    rejected_ = true;  // until the line proves valid: its match lines go with it
    const auto [category, r1] = split_word(rest);
    const auto [severity, r2] = split_word(r1);
    const auto [action, r3] = split_word(r2);
    const std::string_view cause = trim(r3);
    if (cause.empty()) {
      return error(n, "expected: rule CATEGORY SEVERITY ACTION CAUSE; rule skipped");
    }
    if (!valid_category(category)) {
      return error(n, "category " + quoted(category) + " is not 1-" +
                          std::to_string(kMaxRuleCategoryBytes) + " of [a-z0-9_]; rule skipped");
    }
    if (std::find(kReserved.begin(), kReserved.end(), category) != kReserved.end()) {
      return error(n, "category " + quoted(category) +
                          " is reserved for the classifier's fallbacks; rule skipped");
    }
    const auto sev = proto::severity_from_string(severity);
    if (!sev) {
      return error(n, "severity " + quoted(severity) +
                          " is not low, medium, high or critical; rule skipped");
    }
    const auto act = proto::diagnosis_action_from_string(action);
    if (!act) {
      return error(
          n, "action " + quoted(action) + " is not auto-restart, wait or manual; rule skipped");
    }
    if (cause.size() > kMaxRuleCauseBytes || has_control(cause)) {
      return error(n, "cause longer than " + std::to_string(kMaxRuleCauseBytes) +
                          " bytes or with control characters; rule skipped");
    }
    current_ = Rule{std::string(category),
                    std::string(cause),
                    *sev,
                    *act,
                    {},
                    std::string(file_) + ":" + std::to_string(n)};
    current_line_ = n;
    rejected_ = false;
  }

  void match(std::size_t n, std::string_view keyword) {
    if (!current_) {
      if (!rejected_) error(n, "match before any rule; line skipped");
      return;
    }
    if (keyword.empty()) return error(n, "match without a keyword; line skipped");
    if (keyword.size() > kMaxRuleKeywordBytes || has_control(keyword)) {
      return error(n, "keyword longer than " + std::to_string(kMaxRuleKeywordBytes) +
                          " bytes or with control characters; line skipped");
    }
    std::string kw = ascii_lower(keyword);
    auto& kws = current_->keywords;
    if (std::find(kws.begin(), kws.end(), kw) == kws.end()) kws.push_back(std::move(kw));
  }

  std::string_view file_;
  ParsedRules out_;
  std::optional<Rule> current_;
  std::size_t current_line_ = 0;
  bool rejected_ = false;
};

namespace fs = std::filesystem;

// The whole of a rules file, or why it cannot be had.
tl::expected<std::string, std::string> read_rules_file(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec) return tl::unexpected("cannot read: " + ec.message());
  if (!fs::is_regular_file(status)) return tl::unexpected(std::string("not a regular file"));
  std::ifstream in(path, std::ios::binary);
  if (!in) return tl::unexpected("cannot open: " + std::generic_category().message(errno));
  std::string text(kMaxRulesFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return tl::unexpected(std::string("read error"));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxRulesFileBytes) {
    return tl::unexpected("larger than " + std::to_string(kMaxRulesFileBytes) + " bytes");
  }
  return text;
}

// The operators' files in `dir`: *.rules, no hidden ones, in byte order of their names.
std::vector<fs::path> extension_files(const std::string& dir, std::vector<RuleError>& errors) {
  std::vector<fs::path> files;
  if (dir.empty()) return files;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    // No directory is the normal case: the operators have not written any rules.
    if (ec != std::errc::no_such_file_or_directory) {
      errors.push_back({dir, 0, "cannot list: " + ec.message()});
    }
    return files;
  }
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with('.') && name.ends_with(".rules")) files.push_back(it->path());
  }
  if (ec) errors.push_back({dir, 0, "cannot list: " + ec.message()});
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    return a.filename().string() < b.filename().string();
  });
  return files;
}

// The rules of one file appended to `out` (and its problems); false when it gave none.
bool load_file(const fs::path& path, LoadedRules& out) {
  auto text = read_rules_file(path);
  if (!text) {
    out.errors.push_back({path.string(), 0, text.error()});
    return false;
  }
  ParsedRules parsed = parse_rules(*text, path.string());
  out.errors.insert(out.errors.end(), parsed.errors.begin(), parsed.errors.end());
  out.files.push_back(path.string());
  std::move(parsed.rules.begin(), parsed.rules.end(), std::back_inserter(out.table));
  return !parsed.rules.empty();
}

}  // namespace

std::string RuleError::to_string() const {
  return line == 0 ? file + ": " + message : file + ":" + std::to_string(line) + ": " + message;
}

ParsedRules parse_rules(std::string_view text, std::string_view file_name) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a BOM from some editors
  Parser parser(file_name);
  std::size_t n = 1;
  while (!text.empty()) {
    const auto end = text.find('\n');
    parser.line(n++, text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return parser.finish();
}

const RuleTable& builtin_rules() {
  static const RuleTable table = [] {
    RuleTable t;
    t.reserve(kBuiltin.size());
    for (const auto& b : kBuiltin) {
      t.push_back(Rule{std::string(b.category), std::string(b.cause), b.severity, b.action,
                       std::vector<std::string>(b.keywords.begin(), b.keywords.end()), "built-in"});
    }
    return t;
  }();
  return table;
}

LoadedRules load_rules(const std::string& shipped_file, const std::string& extension_dir) {
  LoadedRules out;
  for (const auto& path : extension_files(extension_dir, out.errors)) load_file(path, out);
  out.extension_rules = out.table.size();
  if (!shipped_file.empty() && !load_file(shipped_file, out)) {
    out.errors.push_back({shipped_file, 0, "no rules read from it; the built-in rules stand in"});
  }
  if (out.table.size() == out.extension_rules) {
    out.builtin = true;
    const auto& b = builtin_rules();
    out.table.insert(out.table.end(), b.begin(), b.end());
  }
  return out;
}

}  // namespace trading_heal::diagnoser
