// Coroutine frame pool.
//
// Frames are grouped in 16-byte size classes up to k_max_pooled bytes.
// Each thread keeps a free list per class; a list that grows past
// k_cache_max (frames freed by a thread that does not allocate them, e.g. a
// consumer worker) gives half back to a central list, and an empty list
// refills from the central list before carving new blocks from a 64 KiB
// chunk. Chunks are never returned to the system.
//
// Invariants: a block on any free list is at least its class size and
// 16-byte aligned; the central lists are guarded by their own mutex.
// Under AddressSanitizer, or with -Dframe_pool=false, frames come from
// operator new so that the sanitizer sees every frame.

#include <weft/detail/frame_alloc.hpp>

#include <cstdlib>
#include <mutex>
#include <new>

#include <weft/detail/config.hpp>

namespace weft::detail {

#if defined(WEFT_ASAN) || defined(WEFT_NO_FRAME_POOL)

void* frame_alloc(std::size_t n) { return ::operator new(n); }
void frame_free(void* p, std::size_t) noexcept { ::operator delete(p); }

#else

namespace {

constexpr std::size_t k_granule = 16;
constexpr std::size_t k_max_pooled = 2048;
constexpr std::size_t k_classes = k_max_pooled / k_granule;
constexpr std::size_t k_cache_max = 512;
constexpr std::size_t k_refill = 64;
constexpr std::size_t k_chunk = 64 * 1024;

struct free_block {
    free_block* next;
};

struct central_list {
    std::mutex lock;
    free_block* head = nullptr;
    std::size_t count = 0;
};

central_list g_central[k_classes];

struct thread_cache {
    free_block* head[k_classes] = {};
    std::size_t count[k_classes] = {};
    char* bump = nullptr;
    char* bump_end = nullptr;

    ~thread_cache()
    {
        for (std::size_t c = 0; c < k_classes; ++c) {
            if (!head[c])
                continue;
            free_block* last = head[c];
            while (last->next)
                last = last->next;
            std::lock_guard lk(g_central[c].lock);
            last->next = g_central[c].head;
            g_central[c].head = head[c];
            g_central[c].count += count[c];
            head[c] = nullptr;
            count[c] = 0;
        }
    }

    void* carve(std::size_t size)
    {
        if (static_cast<std::size_t>(bump_end - bump) < size) {
            void* chunk = std::malloc(k_chunk);
            if (!chunk)
                throw std::bad_alloc();
            bump = static_cast<char*>(chunk);
            bump_end = bump + k_chunk;
        }
        void* p = bump;
        bump += size;
        return p;
    }

    void* refill(std::size_t c)
    {
        auto& cl = g_central[c];
        {
            std::lock_guard lk(cl.lock);
            if (cl.head) {
                free_block* first = cl.head;
                free_block* last = first;
                std::size_t n = 1;
                while (n < k_refill && last->next) {
                    last = last->next;
                    ++n;
                }
                cl.head = last->next;
                cl.count -= n;
                last->next = nullptr;
                head[c] = first->next;
                count[c] = n - 1;
                return first;
            }
        }
        return carve((c + 1) * k_granule);
    }

    void spill(std::size_t c)
    {
        // Give back the older half of the list.
        std::size_t keep = count[c] / 2;
        free_block* last_kept = head[c];
        for (std::size_t i = 1; i < keep; ++i)
            last_kept = last_kept->next;
        free_block* first = last_kept->next;
        free_block* last = first;
        std::size_t n = 1;
        while (last->next) {
            last = last->next;
            ++n;
        }
        last_kept->next = nullptr;
        count[c] = keep;
        auto& cl = g_central[c];
        std::lock_guard lk(cl.lock);
        last->next = cl.head;
        cl.head = first;
        cl.count += n;
    }
};

WEFT_TLS thread_cache t_cache;

inline std::size_t class_of(std::size_t n) noexcept { return (n + k_granule - 1) / k_granule - 1; }

} // namespace

void* frame_alloc(std::size_t n)
{
    if (WEFT_UNLIKELY(n > k_max_pooled || n == 0))
        return ::operator new(n);
    auto c = class_of(n);
    auto& tc = t_cache;
    if (auto b = tc.head[c]) {
        tc.head[c] = b->next;
        --tc.count[c];
        return b;
    }
    return tc.refill(c);
}

void frame_free(void* p, std::size_t n) noexcept
{
    if (WEFT_UNLIKELY(n > k_max_pooled || n == 0)) {
        ::operator delete(p);
        return;
    }
    auto c = class_of(n);
    auto& tc = t_cache;
    auto b = static_cast<free_block*>(p);
    b->next = tc.head[c];
    tc.head[c] = b;
    if (WEFT_UNLIKELY(++tc.count[c] > k_cache_max))
        tc.spill(c);
}

#endif

} // namespace weft::detail
