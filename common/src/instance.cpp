#include "trading_heal/common/instance.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

namespace trading_heal::common {
namespace {

namespace fs = std::filesystem;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string unquote(std::string_view v) {
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') {
    return std::string(v.substr(1, v.size() - 2));
  }
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
    std::string out;
    for (std::size_t i = 1; i + 1 < v.size(); ++i) {
      if (v[i] == '\\' && i + 2 < v.size() && (v[i + 1] == '"' || v[i + 1] == '\\')) ++i;
      out += v[i];
    }
    return out;
  }
  return std::string(v);
}

bool valid_deployment_name(const std::string& s) {
  static const std::regex re("^[A-Za-z0-9]+([_-][A-Za-z0-9]+)*$");
  return s.size() <= 64 && std::regex_match(s, re);
}

// The deployments of one env dir: NAME for each NAME.env, sorted. A dir that exists but cannot
// be read is an error naming it.
tl::expected<std::vector<std::string>, std::string> instances_in(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (dir.empty() || !fs::exists(dir, ec)) return out;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    return tl::unexpected("cannot read " + dir + ": " + ec.message() +
                          " (root and the trading-heal-operators group may read it)");
  }
  for (const auto& e : it) {
    const std::string f = e.path().filename().string();
    // NAME.env only: NAME.probe.env and NAME.diagnoser.env are a deployment's per-daemon
    // files (a deployment's name has no dot).
    if (f.size() > 4 && f.ends_with(".env")) {
      std::string name = f.substr(0, f.size() - 4);
      if (valid_deployment_name(name)) out.push_back(std::move(name));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Where {
  SystemdScope scope;
  std::string env_dir;
  std::string runtime_dir;
};

}  // namespace

std::map<std::string, std::string> parse_env_file(std::string_view text) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t nl = text.find('\n', pos);
    std::string_view line =
        trim(text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos));
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string key(trim(line.substr(0, eq)));
    if (key.empty()) continue;
    out[key] = unquote(trim(line.substr(eq + 1)));
  }
  return out;
}

InstanceDirs InstanceDirs::from(const EnvLookup& env) {
  InstanceDirs d;
  if (auto x = env("XDG_CONFIG_HOME"); x && !x->empty()) {
    d.user_env_dir = *x + "/trading-heal";
  } else if (auto h = env("HOME"); h && !h->empty()) {
    d.user_env_dir = *h + "/.config/trading-heal";
  }
  if (auto r = env("XDG_RUNTIME_DIR"); r && !r->empty()) d.user_runtime_dir = *r + "/trading-heal";
  return d;
}

std::string Instance::describe() const {
  return "instance " + name + " (" + std::string(to_string(scope)) + ", " +
         (env_file.empty() ? std::string("no env file") : env_file) + ", sockets in " +
         env("TRADING_HEAL_RUNTIME_DIR").value_or(runtime_dir) + ")";
}

namespace {

// Where a deployment is: the first place (system, then user) that has the wanted name, or, none
// wanted, its only deployment or one called main. nullptr: none found.
struct Picked {
  const Where* where = nullptr;
  std::string name;
};

tl::expected<Picked, std::string> pick(const std::vector<Where>& order,
                                       const std::optional<std::string>& wanted) {
  for (const auto& w : order) {
    const auto listed = instances_in(w.env_dir);
    if (!listed) return tl::unexpected(listed.error());
    const auto& names = *listed;
    if (wanted) {
      if (std::find(names.begin(), names.end(), *wanted) != names.end()) return Picked{&w, *wanted};
    } else if (names.size() == 1 || std::find(names.begin(), names.end(), "main") != names.end()) {
      return Picked{&w, names.size() == 1 ? names.front() : "main"};
    } else if (names.size() > 1) {
      std::string all;
      for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
      return tl::unexpected("several deployments in " + w.env_dir + " (" + all +
                            "): name one with --instance");
    }
  }
  return Picked{nullptr, wanted.value_or("main")};
}

tl::expected<std::map<std::string, std::string>, std::string> read_env_file(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return tl::unexpected("cannot read " + path + ": " + std::strerror(errno) +
                          " (root and the trading-heal-operators group may read it)");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_env_file(text.str());
}

}  // namespace

tl::expected<Instance, std::string> find_instance(const std::optional<std::string>& name, bool user,
                                                  const EnvLookup& process,
                                                  const InstanceDirs& dirs) {
  std::vector<Where> order;
  if (!user) order.push_back({SystemdScope::kSystem, dirs.system_env_dir, dirs.system_runtime_dir});
  order.push_back({SystemdScope::kUser, dirs.user_env_dir, dirs.user_runtime_dir});

  std::optional<std::string> wanted = name;
  if (!wanted) wanted = process("TRADING_HEAL_INSTANCE");
  if (wanted && !valid_deployment_name(*wanted)) {
    return tl::unexpected("invalid instance name '" + *wanted + "'");
  }
  const auto picked = pick(order, wanted);
  if (!picked) return tl::unexpected(picked.error());
  Instance inst;
  inst.name = picked->name;
  const Where* where = picked->where != nullptr ? picked->where : &order.front();
  inst.scope = where->scope;
  std::map<std::string, std::string> file;
  if (picked->where != nullptr) {
    inst.env_file = where->env_dir + "/" + inst.name + ".env";
    auto read = read_env_file(inst.env_file);
    if (!read) return tl::unexpected(read.error());
    file = std::move(*read);
  }
  // What the units set with Environment= (the env file may override it, as in the units).
  std::map<std::string, std::string> unit;
  if (!where->runtime_dir.empty()) {
    inst.runtime_dir = where->runtime_dir + "/" + inst.name;
    unit["TRADING_HEAL_RUNTIME_DIR"] = inst.runtime_dir;
  }
  if (inst.scope == SystemdScope::kUser) unit["TRADING_HEAL_SYSTEMD_SCOPE"] = "user";
  inst.env = [process, file = std::move(file),
              unit = std::move(unit)](const std::string& k) -> std::optional<std::string> {
    if (auto v = process(k)) return v;
    if (auto it = file.find(k); it != file.end()) return it->second;
    if (auto it = unit.find(k); it != unit.end()) return it->second;
    return std::nullopt;
  };
  return inst;
}

}  // namespace trading_heal::common
