// Coroutine frame allocation: every weft coroutine promise allocates its frame
// here, so spawning a task costs a free-list pop instead of a malloc.
#pragma once

#include <cstddef>

namespace weft::detail {

/// Allocates n bytes for a coroutine frame. Thread-local size-class caches
/// back it; blocks freed on another thread join that thread's cache.
/// Throws std::bad_alloc when memory is exhausted.
void* frame_alloc(std::size_t n);

/// Frees a block from frame_alloc; n is the size that was asked for.
void frame_free(void* p, std::size_t n) noexcept;

/// Base for promise types: routes the frame through frame_alloc.
struct pooled_frame {
    static void* operator new(std::size_t n) { return frame_alloc(n); }
    static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }
};

} // namespace weft::detail
