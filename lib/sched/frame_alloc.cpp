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
/// either exists: the one flag frame_alloc and frame_free test. The
/// result's fields are kept apart (not as a frame_offer_result) so that
/// frame_offer_end loads each from the store that wrote it: a load of two
/// fields at once cannot be forwarded from their separate stores, and
/// waits for them to retire, on every spawn.
struct offer_state {
    bool active = false;
    bool open = false;
    bool prefix_mode = false;
    bool freed = false;
    std::uint16_t first_size = 0;
    std::uint32_t taken_size = 0;
    /// The place offered (place mode) or nullptr.
    char* place = nullptr;
    /// The place's size (place mode) or the prefix (prefix mode).
    std::size_t room = 0;
    void* taken = nullptr;
    frame_skip* skips = nullptr;
};

WEFT_TLS offer_state t_offer;

void open_offer(bool prefix_mode, char* place, std::size_t room) noexcept
{
    auto& o = t_offer;
    o.active = true;
    o.open = true;
    o.prefix_mode = prefix_mode;
    o.freed = false;
    o.first_size = 0;
    o.taken_size = 0;
    o.place = place;
    o.room = room;
    o.taken = nullptr;
}

void note_first_size(offer_state& o, std::size_t n) noexcept
{
    if (o.first_size == 0)
        o.first_size = static_cast<std::uint16_t>(n < 0xffff ? n : 0xffff);
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
    if (o.open && p == o.taken && !o.freed) {
        o.freed = true;
        return true;
    }
    return false;
}

} // namespace

void frame_offer_place(void* p, std::size_t cap) noexcept { open_offer(false, static_cast<char*>(p), cap); }

void frame_offer_prefix(std::size_t prefix) noexcept { open_offer(true, nullptr, prefix); }

frame_offer_result frame_offer_end() noexcept
{
    auto& o = t_offer;
    o.open = false;
    o.active = o.skips != nullptr;
    frame_offer_result r;
    r.taken = o.taken;
    r.taken_size = o.taken_size;
    r.first_size = o.first_size;
    r.freed = o.freed;
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

void frame_destroy_inside(std::coroutine_handle<> h) noexcept
{
    frame_skip skip{h.address()};
    frame_skip_push(skip);
    h.destroy();
    frame_skip_pop(skip);
}

#if defined(WEFT_ASAN) || defined(WEFT_NO_FRAME_POOL)

void* frame_alloc(std::size_t n)
{
    if (WEFT_UNLIKELY(t_offer.open))
        note_first_size(t_offer, n);
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

/// Set once the thread's cache_release is registered (register_cache).
WEFT_TLS bool t_cache_registered = false;
void register_cache() noexcept;

struct thread_cache {
    free_block* head[k_classes] = {};
    std::size_t count[k_classes] = {};
    char* bump = nullptr;
    char* bump_end = nullptr;

    /// Gives every cached block back to the central lists (thread exit).
    void release_all() noexcept
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

    [[gnu::noinline]] void* refill(std::size_t c)
    {
        if (!t_cache_registered)
            register_cache();
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

    [[gnu::noinline]] void spill(std::size_t c)
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

// t_cache has no destructor, so that reaching it needs no guard (whose
// first-use path, a call, would make every frame_free save registers): a
// separate thread-local gives the blocks back when the thread ends,
// registered the first time the thread's cache receives any.
WEFT_TLS thread_cache t_cache;

struct cache_release {
    ~cache_release() { t_cache.release_all(); }
};

void register_cache() noexcept
{
    static thread_local cache_release r;
    static_cast<void>(&r);
    t_cache_registered = true;
}

inline std::size_t class_of(std::size_t n) noexcept { return (n + k_granule - 1) / k_granule - 1; }

/// A block of class c from this thread's cache, or nullptr if it has none.
inline free_block* take_cached(std::size_t c) noexcept
{
    auto& tc = t_cache;
    auto b = tc.head[c];
    if (b) {
        tc.head[c] = b->next;
        --tc.count[c];
    }
    return b;
}

inline void* pool_alloc(std::size_t n)
{
    if (WEFT_UNLIKELY(n > k_max_pooled || n == 0))
        return ::operator new(n);
    auto c = class_of(n);
    if (auto b = take_cached(c))
        return b;
    return t_cache.refill(c);
}

[[gnu::noinline]] void pool_free_first(void* p, std::size_t n) noexcept;

inline void pool_free(void* p, std::size_t n) noexcept
{
    if (WEFT_UNLIKELY(n > k_max_pooled || n == 0)) {
        ::operator delete(p);
        return;
    }
    if (WEFT_UNLIKELY(!t_cache_registered))
        return pool_free_first(p, n);
    auto c = class_of(n);
    auto& tc = t_cache;
    auto b = static_cast<free_block*>(p);
    b->next = tc.head[c];
    tc.head[c] = b;
    if (WEFT_UNLIKELY(++tc.count[c] > k_cache_max))
        tc.spill(c);
}

void pool_free_first(void* p, std::size_t n) noexcept
{
    register_cache();
    pool_free(p, n);
}

/// alloc_offered's general case.
[[gnu::noinline]] void* alloc_offered_slow(std::size_t n)
{
    auto& o = t_offer;
    if (o.taken || n == 0 || n > k_max_pooled)
        return pool_alloc(n);
    if (o.prefix_mode) {
        if (o.room + n > k_max_pooled)
            return pool_alloc(n);
        o.taken = static_cast<char*>(pool_alloc(o.room + n)) + o.room;
    } else {
        if (n > o.room)
            return pool_alloc(n);
        o.taken = o.place;
    }
    o.taken_size = static_cast<std::uint32_t>(n);
    return o.taken;
}

/// frame_alloc while an offer is open: serves n bytes from the offer if
/// they fit. The common case (go() of a plain function: a block for the
/// root and the frame, found in the thread's cache) calls nothing.
[[gnu::noinline]] void* alloc_offered(std::size_t n)
{
    auto& o = t_offer;
    note_first_size(o, n);
    if (o.prefix_mode && !o.taken && n != 0 && o.room + n <= k_max_pooled) {
        if (auto b = take_cached(class_of(o.room + n))) {
            o.taken = reinterpret_cast<char*>(b) + o.room;
            o.taken_size = static_cast<std::uint32_t>(n);
            return o.taken;
        }
    }
    return alloc_offered_slow(n);
}

/// frame_free with an offer open or a skip pushed.
[[gnu::noinline]] void free_checked(void* p, std::size_t n) noexcept
{
    if (!free_special(p))
        pool_free(p, n);
}

} // namespace

// The fast paths below call nothing but in tail position, so that they
// save no registers: a spawn allocates and frees twice.

void* frame_alloc(std::size_t n)
{
    if (WEFT_UNLIKELY(t_offer.open))
        return alloc_offered(n);
    return pool_alloc(n);
}

void frame_free(void* p, std::size_t n) noexcept
{
    if (WEFT_UNLIKELY(t_offer.active))
        return free_checked(p, n);
    pool_free(p, n);
}

#endif

} // namespace weft::detail
