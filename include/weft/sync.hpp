// The sync primitives. [sync]
#pragma once

#include <weft/cond.hpp>
#include <weft/mutex.hpp>
#include <weft/once.hpp>
#include <weft/rw_mutex.hpp>
#include <weft/semaphore.hpp>
#include <weft/wait_group.hpp>
