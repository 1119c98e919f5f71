// Heartbeat file parsing (pure).
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>

#include "trading_heal/probe/heartbeat.hpp"

namespace trading_heal::probe {

std::optional<double> parse_heartbeat(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  if (text.empty() || text.size() > 40) return std::nullopt;
  const std::string s(text);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v) || v <= 0) return std::nullopt;
  return v;
}

}  // namespace trading_heal::probe
