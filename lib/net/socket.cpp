// Socket state, addresses, and the handles' non-blocking members.

#include "socket.hpp"

#include <weft/net/tcp.hpp>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "../reactor/epoll/net_poller.hpp"

namespace weft::detail {

void socket_state::release() noexcept
{
    if (m_refs.fetch_sub(1, std::memory_order_acq_rel) != 1)
        return;
    if (poll_desc* d = m_poll.load(std::memory_order_acquire))
        net_poller::instance().remove(d);
    if (accept_queue* q = m_accepts.load(std::memory_order_acquire))
        destroy_accept_queue(q);
    if (recv_queue* q = m_recvs.load(std::memory_order_acquire))
        destroy_recv_queue(q);
    ::close(m_fd);
    delete this;
}

bool socket_state::close() noexcept
{
    if (m_closed.exchange(true, std::memory_order_acq_rel))
        return false;
    // Wakes every operation waiting on the socket, on either backend: a
    // receive sees end of stream, a send EPIPE, an accept EINVAL, and
    // finish() turns them into net::closed.
    ::shutdown(m_fd, SHUT_RDWR);
    if (accept_queue* q = m_accepts.load(std::memory_order_acquire))
        close_accept_queue(q);
    if (recv_queue* q = m_recvs.load(std::memory_order_acquire))
        close_recv_queue(q);
    return true;
}

poll_desc* socket_state::poll()
{
    if (poll_desc* d = m_poll.load(std::memory_order_acquire))
        return d;
    spin_guard g(m_poll_lock);
    if (poll_desc* d = m_poll.load(std::memory_order_relaxed))
        return d;
    poll_desc* d = net_poller::instance().add(m_fd);
    m_poll.store(d, std::memory_order_release);
    return d;
}

namespace {

[[noreturn]] void bad_address(std::string_view address, const char* why)
{
    throw std::invalid_argument("weft::net: bad address \"" + std::string(address) + "\": " + why);
}

} // namespace

socket_address parse_address(std::string_view address, bool for_listen)
{
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos)
        bad_address(address, "missing port");
    std::string_view host = address.substr(0, colon);
    std::string_view port_text = address.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port_text.empty() ||
        port > 65535)
        bad_address(address, "bad port");
    bool v6 = false;
    if (!host.empty() && host.front() == '[') {
        if (host.back() != ']')
            bad_address(address, "unbalanced brackets");
        host = host.substr(1, host.size() - 2);
        v6 = true;
    }
    socket_address out;
    if (host.empty() && for_listen) {
        auto& a = reinterpret_cast<sockaddr_in6&>(out.m_addr);
        a.sin6_family = AF_INET6;
        a.sin6_addr = in6addr_any;
        a.sin6_port = htons(static_cast<std::uint16_t>(port));
        out.m_len = sizeof a;
        return out;
    }
    std::string h(host.empty() || host == "localhost" ? "127.0.0.1" : host);
    if (!v6) {
        auto& a = reinterpret_cast<sockaddr_in&>(out.m_addr);
        if (::inet_pton(AF_INET, h.c_str(), &a.sin_addr) == 1) {
            a.sin_family = AF_INET;
            a.sin_port = htons(static_cast<std::uint16_t>(port));
            out.m_len = sizeof a;
            return out;
        }
    }
    auto& a6 = reinterpret_cast<sockaddr_in6&>(out.m_addr);
    if (::inet_pton(AF_INET6, h.c_str(), &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons(static_cast<std::uint16_t>(port));
        out.m_len = sizeof a6;
        return out;
    }
    bad_address(address, "the host must be a numeric IPv4 or IPv6 address or localhost");
}

std::string format_address(const sockaddr* sa, socklen_t len)
{
    char buf[INET6_ADDRSTRLEN] = {};
    if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
        auto a = reinterpret_cast<const sockaddr_in*>(sa);
        ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
        return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
        auto a = reinterpret_cast<const sockaddr_in6*>(sa);
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            ::inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], buf, sizeof buf);
            return std::string(buf) + ":" + std::to_string(ntohs(a->sin6_port));
        }
        ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
        std::string out = "[";
        out += buf;
        out += "]:";
        out += std::to_string(ntohs(a->sin6_port));
        return out;
    }
    return "?";
}

int new_tcp_socket(int family)
{
    int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        throw std::system_error(errno, std::system_category(), "weft::net: socket");
    return fd;
}

namespace {

std::string name_of(const socket_state* s, bool peer)
{
    if (!s)
        throw net::closed();
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    auto sa = reinterpret_cast<sockaddr*>(&ss);
    int r = peer ? ::getpeername(s->m_fd, sa, &len) : ::getsockname(s->m_fd, sa, &len);
    if (r < 0)
        throw std::system_error(errno, std::system_category(),
                                peer ? "weft::net: getpeername" : "weft::net: getsockname");
    return format_address(sa, len);
}

void set_option(socket_state* s, int level, int name, int value, const char* what)
{
    if (!s)
        throw net::closed();
    if (::setsockopt(s->m_fd, level, name, &value, sizeof value) < 0)
        throw std::system_error(errno, std::system_category(), what);
}

} // namespace

} // namespace weft::detail

namespace weft::net {

using detail::socket_state;

// ---------------------------------------------------------------- tcp_stream

tcp_stream::~tcp_stream()
{
    if (m_sock) {
        m_sock->close();
        m_sock->release();
    }
}

tcp_stream& tcp_stream::operator=(tcp_stream&& o) noexcept
{
    if (this != &o) {
        tcp_stream old(std::move(*this));
        m_sock = o.m_sock;
        o.m_sock = nullptr;
    }
    return *this;
}

void tcp_stream::close() noexcept
{
    if (m_sock)
        m_sock->close();
}

bool tcp_stream::is_open() const noexcept
{
    return m_sock && !m_sock->m_closed.load(std::memory_order_acquire);
}

void tcp_stream::shutdown_write()
{
    if (!is_open())
        throw closed();
    if (::shutdown(m_sock->m_fd, SHUT_WR) < 0)
        throw std::system_error(errno, std::system_category(), "weft::net: shutdown");
}

std::string tcp_stream::remote_address() const { return detail::name_of(m_sock, true); }
std::string tcp_stream::local_address() const { return detail::name_of(m_sock, false); }

void tcp_stream::set_no_delay(bool on)
{
    detail::set_option(m_sock, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "weft::net: TCP_NODELAY");
}

int tcp_stream::native_handle() const noexcept { return m_sock ? m_sock->m_fd : -1; }

tcp_stream accept_operation::await_resume()
{
    int fd = static_cast<int>(finish());
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return tcp_stream(new socket_state(fd));
}

// -------------------------------------------------------------- tcp_listener

tcp_listener tcp_listener::listen(std::string_view address, int backlog)
{
    auto addr = detail::parse_address(address, true);
    int fd;
    try {
        fd = detail::new_tcp_socket(addr.family());
    } catch (const std::system_error& e) {
        if (e.code().value() != EAFNOSUPPORT || !address.starts_with(':'))
            throw;
        // No IPv6 here: every IPv4 interface instead.
        auto& a = reinterpret_cast<sockaddr_in&>(addr.m_addr);
        auto port = reinterpret_cast<sockaddr_in6&>(addr.m_addr).sin6_port;
        addr = {};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_ANY);
        a.sin_port = port;
        addr.m_len = sizeof a;
        fd = detail::new_tcp_socket(AF_INET);
    }
    auto fail = [&](const char* what) {
        int e = errno;
        ::close(fd);
        throw std::system_error(e, std::system_category(),
                                std::string("weft::net: ") + what + " " + std::string(address));
    };
    int one = 1, zero = 0;
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        fail("SO_REUSEADDR");
    if (addr.family() == AF_INET6)
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr.m_addr), addr.m_len) < 0)
        fail("bind");
    if (::listen(fd, backlog) < 0)
        fail("listen");
    return tcp_listener(new socket_state(fd));
}

tcp_listener::~tcp_listener()
{
    if (m_sock) {
        m_sock->close();
        m_sock->release();
    }
}

tcp_listener& tcp_listener::operator=(tcp_listener&& o) noexcept
{
    if (this != &o) {
        tcp_listener old(std::move(*this));
        m_sock = o.m_sock;
        o.m_sock = nullptr;
    }
    return *this;
}

void tcp_listener::close() noexcept
{
    if (m_sock)
        m_sock->close();
}

bool tcp_listener::is_open() const noexcept
{
    return m_sock && !m_sock->m_closed.load(std::memory_order_acquire);
}

std::string tcp_listener::local_address() const { return detail::name_of(m_sock, false); }

unsigned short tcp_listener::port() const
{
    if (!m_sock)
        throw closed();
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(m_sock->m_fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0)
        throw std::system_error(errno, std::system_category(), "weft::net: getsockname");
    return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in&>(ss).sin_port
                                         : reinterpret_cast<sockaddr_in6&>(ss).sin6_port);
}

int tcp_listener::native_handle() const noexcept { return m_sock ? m_sock->m_fd : -1; }

// ---------------------------------------------------------------------- dial

namespace {

class connect_operation : public detail::io_wait {
public:
    connect_operation(socket_state* s, const detail::socket_address& a) noexcept
        : io_wait(s, kind::connect, nullptr, 0)
    {
        set_address(&a.m_addr, a.m_len);
    }
    void await_resume() { (void)finish(); }
};

} // namespace

task<tcp_stream> dial(std::string address)
{
    auto addr = detail::parse_address(address, false);
    tcp_stream s(new socket_state(detail::new_tcp_socket(addr.family())));
    try {
        co_await connect_operation(s.m_sock, addr);
    } catch (const std::system_error& e) {
        // Name the address, as a refused or unreachable peer is found by it.
        throw std::system_error(e.code(), "weft::net: dial " + address);
    }
    s.set_no_delay(true);
    co_return s;
}

} // namespace weft::net
