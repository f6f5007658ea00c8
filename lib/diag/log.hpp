// The library's log: spdlog's logger named "weft", if the application
// registered one. weft never creates it and never touches spdlog's global
// settings, so an application that does not ask for weft's messages sees
// none.
#pragma once

#include <string_view>

namespace weft::detail {

enum class log_level { debug, info, warn, error };

/// Writes msg to the "weft" logger when one is registered.
void log(log_level level, std::string_view msg) noexcept;

} // namespace weft::detail
