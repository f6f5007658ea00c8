// Delivery of POSIX signals to tasks. [os/signal]
#pragma once

#include <initializer_list>
#include <utility>

#include <weft/chan.hpp>
#include <weft/context.hpp>

namespace weft {

/// Relays the signals `sigs` (SIGINT, SIGTERM, SIGHUP, ...) to c from now
/// on: each arrival is a try_send of its number, so a full channel drops it
/// (give c a capacity of at least 1, as in Go). Calling it again for the
/// same channel adds signals. The first relay of a signal replaces its
/// disposition; stop_signal_notify puts the default back once no channel
/// wants it. [signal.Notify]
///
/// Thread safety: callable from any thread. The signals are delivered by
/// a relay thread the first call starts, never inside the signal handler.
/// Throws std::invalid_argument for SIGKILL, SIGSTOP and numbers out of range.
void signal_notify(const chan<int>& c, std::initializer_list<int> sigs);

/// Stops relaying any signal to c. [signal.Stop]
void stop_signal_notify(const chan<int>& c);

/// A context that is cancelled when the first of `sigs` arrives (or when
/// parent is done, or cancel is called). Cancelling it stops the relay.
/// [signal.NotifyContext]
std::pair<context, cancel_func> signal_context(const context& parent,
                                               std::initializer_list<int> sigs);

} // namespace weft
