// Pieces shared by select and select_from.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <weft/detail/biased_lock.hpp>

namespace weft::detail {

/// 64 random bits from a per-thread generator, for select's case order.
std::uint64_t fast_random64() noexcept;

/// Sorts and deduplicates locks so that several selects over overlapping
/// channels always lock in the same (address) order. Returns the count.
inline std::size_t order_locks(chan_lock** locks, std::size_t n) noexcept
{
    std::sort(locks, locks + n);
    return static_cast<std::size_t>(std::unique(locks, locks + n) - locks);
}

inline void lock_all(chan_lock* const* locks, std::size_t n) noexcept
{
    for (std::size_t i = 0; i < n; ++i)
        locks[i]->lock();
}

/// Unlocks in order. Once the first lock is released, the select's task may
/// be resumed elsewhere; it must then take every lock again before touching
/// its own state, so reading locks[i] while still holding it is safe, and n
/// is a copy.
inline void unlock_all(chan_lock* const* locks, std::size_t n) noexcept
{
    for (std::size_t i = 0; i < n; ++i)
        locks[i]->unlock();
}

/// Fills order[0..n) with a uniformly random permutation of 0..n-1
/// (Fisher-Yates). Each swap index comes from 21 bits of a random number
/// scaled to [0, i) by a multiply and a shift, with no division: three per
/// 64-bit draw, one draw for a select of up to four cases. The scaling's
/// bias is below i / 2^21 (under 2e-6 for four cases); above 1024 choices
/// an index takes 32 bits of its own draw.
template <class Index>
void random_order(Index* order, std::size_t n) noexcept
{
    for (std::size_t i = 0; i < n; ++i)
        order[i] = static_cast<Index>(i);
    std::uint64_t bits = 0;
    unsigned left = 0;
    for (std::size_t i = n; i > 1; --i) {
        std::size_t j;
        if (i <= 1024) {
            if (left == 0) {
                bits = fast_random64();
                left = 3;
            }
            j = static_cast<std::size_t>(((bits & 0x1fffff) * i) >> 21);
            bits >>= 21;
            --left;
        } else {
            j = static_cast<std::size_t>(((fast_random64() & 0xffffffff) * i) >> 32);
        }
        std::swap(order[i - 1], order[j]);
    }
}

} // namespace weft::detail
