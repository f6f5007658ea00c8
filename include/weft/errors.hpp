// Exceptions thrown where Go panics.
#pragma once

#include <stdexcept>

namespace weft {

/// Thrown by send on a closed channel, by close of a closed or nil channel,
/// and by a select whose chosen case sends on a closed channel.
/// [panic: send on closed channel / close of closed channel / close of nil channel]
class closed_channel : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

} // namespace weft
