#include "trading_heal/exporter/startup.hpp"

#include <unistd.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "trading_heal/exporter/http_api.hpp"

namespace trading_heal::exporter {

tl::expected<std::string, std::string> read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return tl::unexpected(std::string("cannot read the token file"));
  std::stringstream s;
  s << in.rdbuf();
  std::string t = s.str();
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!t.empty() && space(t.back())) t.pop_back();
  std::size_t lead = 0;
  while (lead < t.size() && space(t[lead])) ++lead;
  t.erase(0, lead);
  if (t.empty()) return tl::unexpected(std::string("the token file is empty"));
  if (t.find_first_of(" \t\r\n") != std::string::npos) {
    return tl::unexpected(std::string("the token holds whitespace"));
  }
  return t;
}

tl::expected<Startup, common::ConfigError> load_startup(const common::EnvLookup& env,
                                                        const char* credentials_dir) {
  auto cfg = common::load_config(env);
  if (!cfg) return tl::unexpected(cfg.error());
  if (credentials_dir != nullptr && *credentials_dir != '\0') {
    const std::string path = std::string(credentials_dir) + "/api-token";
    if (::access(path.c_str(), F_OK) == 0) cfg->api_token_file = path;
  }
  std::string token;
  if (!cfg->api_token_file.empty()) {
    auto t = read_token_file(cfg->api_token_file);
    if (!t) {
      return tl::unexpected(
          common::ConfigError{"TRADING_HEAL_API_TOKEN_FILE", cfg->api_token_file, t.error()});
    }
    token = std::move(*t);
  }
  // /status and /audit reachable from other hosts with no token: refused unless asked for.
  if (token.empty() && !loopback_listen(cfg->api_listen) && !cfg->api_allow_anonymous) {
    return tl::unexpected(common::ConfigError{
        "TRADING_HEAL_API_LISTEN", cfg->api_listen,
        "is not loopback and TRADING_HEAL_API_TOKEN_FILE is not set: /status and /audit would be "
        "open to the network (set a token file, listen on 127.0.0.1, or set "
        "TRADING_HEAL_API_ALLOW_ANONYMOUS=true on purpose)"});
  }
  auto ids = common::resolve_identities(*cfg);
  if (!ids) return tl::unexpected(ids.error());
  return Startup{std::move(*cfg), std::move(token), std::move(*ids)};
}

}  // namespace trading_heal::exporter
