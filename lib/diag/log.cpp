#include "log.hpp"

#include <spdlog/spdlog.h>

namespace weft::detail {

void log(log_level level, std::string_view msg) noexcept
{
    try {
        auto logger = spdlog::get("weft");
        if (!logger)
            return;
        switch (level) {
        case log_level::debug: logger->debug("{}", msg); break;
        case log_level::info: logger->info("{}", msg); break;
        case log_level::warn: logger->warn("{}", msg); break;
        case log_level::error: logger->error("{}", msg); break;
        }
    } catch (...) {
        // A failing sink must not take the runtime down.
    }
}

} // namespace weft::detail
