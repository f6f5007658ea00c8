// Pieces shared by select and select_from.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <weft/detail/spinlock.hpp>

namespace weft::detail {

/// A per-thread random number for select's case order.
std::uint32_t fast_random() noexcept;

/// Sorts and deduplicates locks so that several selects over overlapping
/// channels always lock in the same (address) order. Returns the count.
inline std::size_t order_locks(spinlock** locks, std::size_t n) noexcept
{
    std::sort(locks, locks + n);
    return static_cast<std::size_t>(std::unique(locks, locks + n) - locks);
}

inline void lock_all(spinlock* const* locks, std::size_t n) noexcept
{
    for (std::size_t i = 0; i < n; ++i)
        locks[i]->lock();
}

/// Unlocks in order. Once the first lock is released, the select's task may
/// be resumed elsewhere; it must then take every lock again before touching
/// its own state, so reading locks[i] while still holding it is safe, and n
/// is a copy.
inline void unlock_all(spinlock* const* locks, std::size_t n) noexcept
{
    for (std::size_t i = 0; i < n; ++i)
        locks[i]->unlock();
}

/// Fills order[0..n) with a uniformly random permutation of 0..n-1.
template <class Index>
void random_order(Index* order, std::size_t n) noexcept
{
    for (std::size_t i = 0; i < n; ++i)
        order[i] = static_cast<Index>(i);
    for (std::size_t i = n; i > 1; --i) {
        std::size_t j = fast_random() % i;
        std::swap(order[i - 1], order[j]);
    }
}

} // namespace weft::detail
