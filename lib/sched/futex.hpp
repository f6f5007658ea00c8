// Thin wrappers over the futex system call.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

/// Sleeps while *word == expected (spurious returns allowed).
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) noexcept;
/// futex_wait for at most ns nanoseconds.
void futex_wait_for(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                    std::int64_t ns) noexcept;
/// Wakes up to n threads sleeping on word. Safe on memory that is still
/// mapped even if the object is gone: it only names an address.
void futex_wake(std::atomic<std::uint32_t>* word, int n) noexcept;

} // namespace weft::detail
