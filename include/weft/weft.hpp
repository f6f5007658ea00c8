// weft: Go's concurrency model on C++20 coroutines. The umbrella header.
#pragma once

#include <weft/chan.hpp>
#include <weft/context.hpp>
#include <weft/diag.hpp>
#include <weft/errors.hpp>
#include <weft/runtime.hpp>
#include <weft/select.hpp>
#include <weft/signal.hpp>
#include <weft/rate_limiter.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>
#include <weft/time.hpp>
#include <weft/sync.hpp>
