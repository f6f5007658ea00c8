// Captures what the library logs: registers the spdlog logger "weft" with a
// sink into a string for the capture's lifetime.
#pragma once

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>
#include <string>

namespace weft::test {

class log_capture {
public:
    log_capture() : m_sink(std::make_shared<sink>())
    {
        m_sink->set_pattern("%l %v");
        auto logger = std::make_shared<spdlog::logger>("weft", m_sink);
        logger->set_level(spdlog::level::debug);
        spdlog::register_logger(logger);
    }
    log_capture(const log_capture&) = delete;
    log_capture& operator=(const log_capture&) = delete;
    ~log_capture() { spdlog::drop("weft"); }

    /// Everything logged so far, one "LEVEL message" line per record.
    std::string text() const
    {
        std::lock_guard lk(m_sink->m_text_lock);
        return m_sink->m_text;
    }

private:
    // base_sink serialises sink_it_ with its own lock; m_text_lock also
    // guards m_text against text() on another thread.
    struct sink : spdlog::sinks::base_sink<std::mutex> {
        void sink_it_(const spdlog::details::log_msg& msg) override
        {
            spdlog::memory_buf_t line;
            formatter_->format(msg, line);
            std::lock_guard lk(m_text_lock);
            m_text.append(line.data(), line.size());
        }
        void flush_() override {}

        mutable std::mutex m_text_lock;
        std::string m_text;
    };
    std::shared_ptr<sink> m_sink;
};

} // namespace weft::test
