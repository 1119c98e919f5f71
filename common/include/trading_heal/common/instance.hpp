// How the operator's tools (trading-heal-ctl, trading-heal-tap) find a deployment the way its
// units do: the instance's environment file (/etc/trading-heal/NAME.env, or with a user
// deployment $XDG_CONFIG_HOME/trading-heal/NAME.env) over the units' own settings (runtime
// directory /run/trading-heal/NAME or $XDG_RUNTIME_DIR/trading-heal/NAME), and the caller's
// environment over both. Pure except find_instance(), which reads the two directories.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "trading_heal/common/config.hpp"

namespace trading_heal::common {

// KEY=VALUE lines as systemd's EnvironmentFile= reads them: blank lines and lines starting
// with # or ; are skipped, whitespace around the key and the value is dropped, a value in
// double or single quotes loses them (\" and \\ inside double quotes). Later lines win.
std::map<std::string, std::string> parse_env_file(std::string_view text);

// Where deployments live (injectable for tests).
struct InstanceDirs {
  std::string system_env_dir = "/etc/trading-heal";
  std::string system_runtime_dir = "/run/trading-heal";
  std::string user_env_dir;      // $XDG_CONFIG_HOME/trading-heal or ~/.config/trading-heal
  std::string user_runtime_dir;  // $XDG_RUNTIME_DIR/trading-heal ("" without one)
  static InstanceDirs from(const EnvLookup& env);
};

struct Instance {
  std::string name;
  SystemdScope scope = SystemdScope::kSystem;
  std::string env_file;     // "" when the deployment has none (settings from the caller only)
  std::string runtime_dir;  // where its sockets are
  EnvLookup env;            // caller's environment > env file > the units' settings
  // "instance main (system, /etc/trading-heal/main.env, sockets in /run/trading-heal/main)"
  std::string describe() const;
};

// The deployment to talk to: `name` (--instance), else TRADING_HEAL_INSTANCE, else the only one
// installed, else `main`. `user`: only the user deployments ($XDG_CONFIG_HOME); otherwise the
// system ones, then the user ones. Fails, naming the file, when its env file cannot be read or
// several instances exist and none was named.
tl::expected<Instance, std::string> find_instance(const std::optional<std::string>& name, bool user,
                                                  const EnvLookup& process,
                                                  const InstanceDirs& dirs);

}  // namespace trading_heal::common
