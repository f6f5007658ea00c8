// Asymmetric fences (see asym_fence.hpp).
//
// Invariant: g_asym_fence is set once, after the registration succeeded,
// and never cleared; heavy_fence then always issues the membarrier (a light
// side that saw the flag set relies on it).

#include "asym_fence.hpp"

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace weft::detail {

std::atomic<bool> g_asym_fence{false};

namespace {
std::once_flag g_asym_once;
}

void setup_asymmetric_fence() noexcept
{
    std::call_once(g_asym_once, [] {
#if defined(SYS_membarrier)
        const long cmds = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
        if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
            ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
            g_asym_fence.store(true, std::memory_order_seq_cst);
#endif
    });
}

void heavy_fence() noexcept
{
#if defined(SYS_membarrier)
    if (g_asym_fence.load(std::memory_order_seq_cst)) {
        // Registered, the command has no reason to fail; should it, the
        // light sides' compiler barriers would not be enough.
        for (int tries = 0; ::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0;
             ++tries) {
            if (tries == 1000) {
                std::fputs("weft: membarrier failed after it was registered\n", stderr);
                std::abort();
            }
            ::sched_yield();
        }
        return;
    }
#endif
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

} // namespace weft::detail
