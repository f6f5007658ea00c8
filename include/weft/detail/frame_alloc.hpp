// Coroutine frame allocation: every weft coroutine promise allocates its frame
// here, so spawning a task costs a free-list pop instead of a malloc.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace weft::detail {

/// The largest frame the pool serves; larger ones come from operator new
/// (and never take an offer).
inline constexpr std::size_t frame_pool_max = 2048;

/// Allocates n bytes for a coroutine frame. Thread-local size-class caches
/// back it; blocks freed on another thread join that thread's cache.
/// Throws std::bad_alloc when memory is exhausted.
void* frame_alloc(std::size_t n);

/// Frees a block from frame_alloc; n is the size that was asked for.
void frame_free(void* p, std::size_t n) noexcept;

// Offers: placing a spawned task's first frame inside the block that holds
// its root state (see root_base), so that go() allocates once. An offer is
// open on one thread from frame_offer_* to frame_offer_end, around the call
// of the task's function; the first frame allocated meanwhile that fits
// takes it. Offers do not nest. With the pool off (sanitizers), offers are
// never taken.

/// Offers [p, p + cap), part of a block the caller owns.
void frame_offer_place(void* p, std::size_t cap) noexcept;
/// Offers to allocate the frame at offset `prefix` of a new block of
/// prefix + n bytes (n: the frame's size); the caller then owns the block.
void frame_offer_prefix(std::size_t prefix) noexcept;

/// What became of an offer. Sixteen bytes, so that it comes back in two
/// registers.
struct frame_offer_result {
    /// Where the frame that took the offer is, or nullptr if none did.
    void* taken = nullptr;
    /// That frame's size.
    std::uint32_t taken_size = 0;
    /// The size of the first frame allocated while the offer was open
    /// (0xffff for any size of 64 KiB or more; 0: none).
    std::uint16_t first_size = 0;
    /// That frame was freed before the offer ended: its place is free again.
    bool freed = false;
};
/// Closes this thread's offer and reports what became of it.
frame_offer_result frame_offer_end() noexcept;

/// While a frame_skip is pushed on a thread, frame_free of its address on
/// that thread does nothing: the frame sits inside a block its owner frees.
/// Pushes and pops nest (a frame's destructors may destroy other tasks).
struct frame_skip {
    void* addr = nullptr;
    frame_skip* next = nullptr;
};
void frame_skip_push(frame_skip& s) noexcept;
void frame_skip_pop(frame_skip& s) noexcept;

/// Destroys the coroutine frame h, which lies inside a block that its
/// owner frees: with a frame_skip of its address pushed meanwhile.
void frame_destroy_inside(std::coroutine_handle<> h) noexcept;

/// Base for promise types: routes the frame through frame_alloc.
struct pooled_frame {
    static void* operator new(std::size_t n) { return frame_alloc(n); }
    static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }
};

} // namespace weft::detail
