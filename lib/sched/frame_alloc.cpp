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
// operator new so that the sanitizer sees every frame, and offers are never
// taken (a frame inside another block could not go back to operator delete).
//
// Offers (frame_offer_*): only one frame takes an offer, and only a frame of
// at most k_max_pooled bytes. The taker is normally the spawned task's body;
// should another frame take it and be freed after the offer closed, its
// place joins a free list like any block of its class (places are 16-byte
// aligned and at least that big), and the block it lies in is never freed
// as a whole (see root_base::m_keep_block). Freed while the offer is open,
// the place goes back to the offerer (frame_offer_result::freed).

#include <weft/detail/frame_alloc.hpp>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>
#include <utility>

#include <weft/detail/config.hpp>

namespace weft::detail {

namespace {

/// This thread's open offer and pushed skips. `active` is true while
/// either exists: the one flag frame_alloc and frame_free test.
struct offer_state {
    bool active = false;
    bool open = false;
    bool prefix_mode = false;
    char* place = nullptr;
    std::size_t cap = 0;
    std::size_t prefix = 0;
    frame_offer_result result;
    frame_skip* skips = nullptr;
};

WEFT_TLS offer_state t_offer;

void open_offer(bool prefix_mode, char* place, std::size_t cap, std::size_t prefix) noexcept
{
    auto& o = t_offer;
    o.open = true;
    o.active = true;
    o.prefix_mode = prefix_mode;
    o.place = place;
    o.cap = cap;
    o.prefix = prefix;
    o.result = {};
}

/// frame_free's slow path: true if p is not to be freed here.
bool free_special(void* p) noexcept
{
    auto& o = t_offer;
    for (auto s = o.skips; s; s = s->next) {
        if (s->addr == p) {
            s->addr = nullptr;
            return true;
        }
    }
    if (o.open && p == o.result.taken && !o.result.freed) {
        o.result.freed = true;
        return true;
    }
    return false;
}

void* take_offer(std::size_t n);

} // namespace

void frame_offer_place(void* p, std::size_t cap) noexcept
{
    open_offer(false, static_cast<char*>(p), cap, 0);
}

void frame_offer_prefix(std::size_t prefix) noexcept { open_offer(true, nullptr, 0, prefix); }

frame_offer_result frame_offer_end() noexcept
{
    auto& o = t_offer;
    o.open = false;
    o.active = o.skips != nullptr;
    o.place = nullptr;
    // Read field by field, as take_offer and free_special wrote them a
    // moment ago: a copy of the whole struct loads two fields at once,
    // which the CPU cannot forward from their separate stores (it waits
    // for them to retire, on every spawn). The signal fences keep the
    // compiler from merging the loads.
    frame_offer_result r;
    r.taken = o.result.taken;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    r.taken_size = o.result.taken_size;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    r.freed = o.result.freed;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    r.first_size = o.result.first_size;
    o.result = {};
    return r;
}

void frame_skip_push(frame_skip& s) noexcept
{
    auto& o = t_offer;
    s.next = o.skips;
    o.skips = &s;
    o.active = true;
}

void frame_skip_pop(frame_skip& s) noexcept
{
    auto& o = t_offer;
    o.skips = s.next;
    o.active = o.open || o.skips != nullptr;
}

#if defined(WEFT_ASAN) || defined(WEFT_NO_FRAME_POOL)

namespace {
void* take_offer(std::size_t n)
{
    auto& o = t_offer;
    if (o.result.first_size == 0)
        o.result.first_size = n;
    return nullptr;
}
} // namespace

void* frame_alloc(std::size_t n)
{
    if (WEFT_UNLIKELY(t_offer.open))
        static_cast<void>(take_offer(n));
    return ::operator new(n);
}

void frame_free(void* p, std::size_t) noexcept
{
    if (WEFT_UNLIKELY(t_offer.active) && free_special(p))
        return;
    ::operator delete(p);
}

#else

namespace {

constexpr std::size_t k_granule = 16;
constexpr std::size_t k_max_pooled = frame_pool_max;
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

void* pool_alloc(std::size_t n)
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

/// Serves n bytes from the open offer if they fit (nullptr: they do not).
void* take_offer(std::size_t n)
{
    auto& o = t_offer;
    auto& r = o.result;
    if (r.first_size == 0)
        r.first_size = n;
    if (r.taken || n == 0 || n > k_max_pooled)
        return nullptr;
    if (o.prefix_mode) {
        if (o.prefix + n > k_max_pooled)
            return nullptr;
        r.taken = static_cast<char*>(pool_alloc(o.prefix + n)) + o.prefix;
    } else {
        if (n > o.cap)
            return nullptr;
        r.taken = o.place;
    }
    r.taken_size = n;
    return r.taken;
}

} // namespace

void* frame_alloc(std::size_t n)
{
    if (WEFT_UNLIKELY(t_offer.open))
        if (void* p = take_offer(n))
            return p;
    return pool_alloc(n);
}

void frame_free(void* p, std::size_t n) noexcept
{
    if (WEFT_UNLIKELY(t_offer.active) && free_special(p))
        return;
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
