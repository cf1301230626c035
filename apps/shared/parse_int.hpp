// Command-line integers for the apps: one parser, one message.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

namespace parla_apps {

/// `text` as an integer >= `min`; otherwise std::invalid_argument naming the flag, e.g.
/// "--n expects an integer >= 1, got '-5'".
inline std::int64_t parse_int(std::string_view flag, const char* text, std::int64_t min) {
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || value < min) {
    throw std::invalid_argument(std::string(flag) + " expects an integer >= " +
                                std::to_string(min) + ", got '" + text + "'");
  }
  return value;
}

}  // namespace parla_apps
