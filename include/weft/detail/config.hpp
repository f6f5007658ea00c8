// Build-wide macros shared by the public headers.
#pragma once
#include <cstddef>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(WEFT_ASAN)
#define WEFT_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(WEFT_TSAN)
#define WEFT_TSAN 1
#endif

// Thread-locals of the library are reached from every resume and wake-up;
// the initial-exec model makes each access one load instead of a call to
// __tls_get_addr. (libweft.so is meant to be linked, not dlopen'ed late.)
// lib/meson.build makes initial-exec the library's default as well, for the
// thread-locals the compiler adds (guards of those with destructors).
#define WEFT_TLS thread_local __attribute__((tls_model("initial-exec")))

// For the few hot paths the compiler's size heuristics keep out of line
// although they are a handful of instructions once inlined (a channel
// lock's biased path).
#define WEFT_ALWAYS_INLINE __attribute__((always_inline))

// Marks an await_suspend that hands the suspending coroutine to other threads
// (a wait queue, a run queue) before it returns. Clang before 19 may inline
// it into the coroutine and keep its locals in the coroutine frame, reading
// them after another thread has already resumed or destroyed that frame
// (llvm-project issue 56301). Out of line, the locals stay on the stack.
#if defined(__clang__) && __clang_major__ < 19
#define WEFT_AWAIT_SUSPEND __attribute__((noinline))
#else
#define WEFT_AWAIT_SUSPEND
#endif

// WEFT_NO_DIAG_BOOKKEEPING (define it for the library and the program
// alike) drops what dump_tasks records at each suspension: the state, its
// start and the co_await's source location. It exists so that tools/bench
// can measure that cost; dumps of such a build show no states or locations.

#define WEFT_LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace weft::detail {
/// Size of a cache line on the targets weft runs on; used to keep
/// independently written atomics apart.
inline constexpr std::size_t cache_line = 64;
} // namespace weft::detail
