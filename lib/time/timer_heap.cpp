#include "timer_heap.hpp"

namespace weft::detail {

void timer_heap::sift_up(std::uint32_t i) noexcept
{
    const entry e = m_nodes[i];
    while (i > 0) {
        std::uint32_t parent = (i - 1) / 4;
        if (m_nodes[parent].when <= e.when)
            break;
        place(i, m_nodes[parent]);
        i = parent;
    }
    place(i, e);
}

void timer_heap::sift_down(std::uint32_t i) noexcept
{
    const auto size = static_cast<std::uint32_t>(m_nodes.size());
    const entry e = m_nodes[i];
    for (;;) {
        std::uint32_t first = 4 * i + 1;
        if (first >= size)
            break;
        std::uint32_t best = first;
        std::uint32_t last = first + 4 < size ? first + 4 : size;
        for (std::uint32_t c = first + 1; c < last; ++c)
            if (m_nodes[c].when < m_nodes[best].when)
                best = c;
        if (m_nodes[best].when >= e.when)
            break;
        place(i, m_nodes[best]);
        i = best;
    }
    place(i, e);
}

void timer_heap::remove_at(std::uint32_t i) noexcept
{
    const entry last = m_nodes.back();
    m_nodes.pop_back();
    if (i < m_nodes.size()) {
        place(i, last);
        if (i > 0 && m_nodes[(i - 1) / 4].when > last.when)
            sift_up(i);
        else
            sift_down(i);
    }
}

bool timer_heap::push(timer_node* n, std::int64_t when)
{
    spin_guard g(m_lock);
    n->m_when = when;
    m_nodes.push_back(entry{when, n});
    sift_up(static_cast<std::uint32_t>(m_nodes.size() - 1));
    n->m_heap.store(this, std::memory_order_release);
    bool first = m_nodes[0].node == n;
    if (first)
        publish();
    return first;
}

bool timer_heap::remove(timer_node* n) noexcept
{
    spin_guard g(m_lock);
    if (n->m_heap.load(std::memory_order_relaxed) != this)
        return false;
    bool was_first = n->m_index == 0;
    remove_at(n->m_index);
    n->m_heap.store(nullptr, std::memory_order_relaxed);
    if (was_first)
        publish();
    return true;
}

std::size_t timer_heap::pop_due(std::int64_t now, timer_node** out, std::size_t max) noexcept
{
    std::size_t k = 0;
    spin_guard g(m_lock);
    while (k < max && !m_nodes.empty() && m_nodes[0].when <= now) {
        timer_node* n = m_nodes[0].node;
        remove_at(0);
        n->m_firing.store(true, std::memory_order_relaxed);
        n->m_heap.store(nullptr, std::memory_order_release);
        out[k++] = n;
    }
    if (k)
        publish();
    return k;
}

std::size_t timer_heap::pop_all(timer_node** out, std::size_t max) noexcept
{
    std::size_t k = 0;
    spin_guard g(m_lock);
    while (k < max && !m_nodes.empty()) {
        timer_node* n = m_nodes.back().node;
        m_nodes.pop_back();
        n->m_firing.store(true, std::memory_order_relaxed);
        n->m_heap.store(nullptr, std::memory_order_release);
        out[k++] = n;
    }
    publish();
    return k;
}

std::size_t timer_heap::fire_due(std::int64_t now) noexcept
{
    constexpr std::size_t k_batch = 64;
    timer_node* due[k_batch];
    std::size_t total = 0;
    for (;;) {
        if (earliest() > now)
            return total;
        std::size_t n = pop_due(now, due, k_batch);
        for (std::size_t i = 0; i < n; ++i)
            due[i]->m_callback(due[i], timer_node::event::fire);
        total += n;
        if (n < k_batch)
            return total;
    }
}

} // namespace weft::detail
