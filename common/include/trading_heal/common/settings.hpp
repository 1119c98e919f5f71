// Every setting in one table (common/src/settings.cpp): its name, who reads it, its bounds, how it
// is parsed and checked, and one line of help. The table drives load_config, each binary's
// --help ("Environment"), `trading-heal-ctl settings`, and the checks that the README's settings
// table and deploy/trading-heal.env.example name exactly these settings.
#pragma once

#include <string>
#include <vector>

namespace trading_heal::common {

// Who reads a setting (a bit set).
enum Component : unsigned {
  kProbe = 1U << 0,
  kDiagnoser = 1U << 1,
  kActuator = 1U << 2,
  kExporter = 1U << 3,
  kCtl = 1U << 4,  // trading-heal-ctl and trading-heal-tap
  kDaemons = kProbe | kDiagnoser | kActuator | kExporter,
};

struct SettingDoc {
  std::string name;
  std::string default_text;  // what a configuration with nothing set holds, "" when unset
  std::string help;          // one line, bounds included
  unsigned readers = 0;
  bool derived = false;  // default_text describes how the default is derived
};

// Every setting, in the order load_config reads them.
std::vector<SettingDoc> setting_docs();
// The "Environment" section of a binary's --help: the settings `readers` read, with defaults.
std::string settings_help(unsigned readers);
// The README's settings table (Markdown), one row per setting.
std::string settings_markdown();
// "probe, actuator" for a reader set.
std::string readers_text(unsigned readers);

}  // namespace trading_heal::common
