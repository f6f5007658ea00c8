# gdb support for weft programs: pretty-printers for weft::task,
# weft::chan (and send_chan/recv_chan), weft::context and task headers, and
# commands that list the live tasks and walk a suspended task's async stack.
#
#   (gdb) source tools/gdb/weft.py
#   (gdb) weft-tasks                 # every live task: id, state, creator
#   (gdb) async-bt 1031              # the task's awaiting frames, innermost first
#   (gdb) async-bt all               # ... of every task
#   (gdb) async-bt 0x7ffff0001d80    # ... or by task_header address
#
# Works on live processes and core files (it only reads memory). Frame
# layout assumed (GCC and Clang): a coroutine frame starts with its resume
# and destroy function pointers, followed by the promise at the promise's
# alignment (16 bytes on).

import gdb
import gdb.printing


def _ptr(v):
    return int(v.cast(gdb.lookup_type("unsigned long")))


def _string(v):
    try:
        return v.string() if _ptr(v) else ""
    except gdb.error:
        return "?"


def _clean(name):
    """GCC names a coroutine body after its frame type; demangle that."""
    at = name.find(".Frame")
    start = name.rfind("_Z", 0, at) if at >= 0 else -1
    if start < 0:
        return name
    try:
        return gdb.execute("demangle -l c++ -- " + name[start:at], to_string=True).strip()
    except gdb.error:
        return name


def _location(loc):
    """'function at file:line' of a std::source_location, '' if empty."""
    try:
        impl = loc["_M_impl"]
        if not _ptr(impl):
            return ""
        impl = impl.dereference()
        return "%s at %s:%d" % (
            _clean(_string(impl["_M_function_name"])), _string(impl["_M_file_name"]), int(impl["_M_line"]))
    except gdb.error:
        return str(loc)


def _symbol(addr):
    s = gdb.execute("info symbol 0x%x" % addr, to_string=True).strip()
    return s.split(" in section")[0] if "No symbol" not in s else "0x%x" % addr


def _task_headers():
    sym = None
    for name in ("weft::detail::(anonymous namespace)::g_sched", "weft::detail::g_sched"):
        sym = gdb.lookup_static_symbol(name) or gdb.lookup_global_symbol(name)
        if sym is not None:
            break
    if sym is None:
        raise gdb.GdbError("weft: no symbol weft::detail::g_sched (libweft without debug info?)")
    sched = sym.value()["_M_b"]["_M_p"]
    if not _ptr(sched):
        return
    sched = sched.dereference()
    n = int(sched["m_n"])
    # A unique_ptr<registry_shard[]> is laid out as the bare pointer.
    shard_type = gdb.lookup_type("weft::detail::registry_shard").pointer()
    shards = sched["m_shards"].address.cast(shard_type.pointer()).dereference()
    for i in range(n + 1):
        t = shards[i]["m_head"]
        while _ptr(t):
            yield t
            t = t["m_reg_next"]


def _state(t):
    wait = t["m_wait"]["_M_b"]["_M_p"]
    return _string(wait) if _ptr(wait) else "runnable or running"


class TaskHeaderPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        v = self.val
        parent = int(v["m_parent"])
        site = _location(v["m_created"])
        creator = ("task %d" % parent) if parent else ""
        if site:
            creator += (" in " if creator else "") + site
        return "task %d [%s] created by %s" % (
            int(v["m_id"]), _state(v), creator or "weft::run")


class TaskPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        frame = _ptr(self.val["m_coro"]["_M_fr_ptr"])
        if not frame:
            return "weft::task (empty)"
        return "weft::task frame 0x%x (%s)" % (frame, _symbol(_ptr(
            gdb.Value(frame).cast(gdb.lookup_type("void").pointer().pointer()).dereference())))


class ChanPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        s = self.val["m_ref"]["m_s"]
        if not _ptr(s):
            return "nil channel"
        s = s.dereference()
        return "chan (len %d, cap %d%s, %d refs)" % (
            int(s["m_count"]["_M_i"]), int(s["m_cap"]),
            ", closed" if bool(s["m_closed"]["_M_base"]["_M_i"]) else "",
            int(s["m_refs"]["_M_i"]))


class ContextPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        node = self.val["m_node"]
        if not _ptr(node):
            return "context (background)"
        node = node.dereference()
        err = int(node["m_err"]["_M_i"])
        deadline = int(node["m_deadline"])
        parts = ["canceled" if err == 1 else "deadline exceeded" if err == 2 else "live"]
        if deadline != (1 << 63) - 1:
            parts.append("deadline %d ns" % deadline)
        if _ptr(node["m_key"]):
            parts.append("value")
        return "context (%s)" % ", ".join(parts)


def _printers():
    pp = gdb.printing.RegexpCollectionPrettyPrinter("weft")
    pp.add_printer("task_header", "^weft::detail::task_header$", TaskHeaderPrinter)
    pp.add_printer("task", "^weft::task<.*>$", TaskPrinter)
    pp.add_printer("chan", "^weft::(chan|send_chan|recv_chan)<.*>$", ChanPrinter)
    pp.add_printer("context", "^weft::context$", ContextPrinter)
    return pp


class WeftTasks(gdb.Command):
    """List weft's live tasks: weft-tasks"""

    def __init__(self):
        super().__init__("weft-tasks", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        for t in _task_headers():
            print("0x%x %s" % (_ptr(t), TaskHeaderPrinter(t.dereference()).to_string()))


class AsyncBacktrace(gdb.Command):
    """Walk a suspended weft task's awaiting frames, innermost first.
async-bt ID | async-bt ADDRESS-OF-TASK-HEADER | async-bt all"""

    def __init__(self):
        super().__init__("async-bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        if arg.strip() == "all":
            for t in list(_task_headers()):
                self.walk(t)
                print()
            return
        header_type = gdb.lookup_type("weft::detail::task_header").pointer()
        t = None
        value = int(gdb.parse_and_eval(arg))
        for h in _task_headers():
            if int(h["m_id"]) == value or _ptr(h) == value:
                t = h
        if t is None:
            if value < 4096:
                raise gdb.GdbError("weft: no live task %d" % value)
            t = gdb.Value(value).cast(header_type)
        self.walk(t)

    def walk(self, t):
        print(TaskHeaderPrinter(t.dereference()).to_string())
        promise_type = gdb.lookup_type("weft::detail::task_promise_base").pointer()
        voidpp = gdb.lookup_type("void").pointer().pointer()
        frame = _ptr(t["m_resume"]["_M_fr_ptr"])
        depth = 0
        while frame and depth < 256:
            promise = gdb.Value(frame + 16).cast(promise_type).dereference()
            where = _location(promise["m_where"])
            if not where:
                resume = _ptr(gdb.Value(frame).cast(voidpp).dereference())
                where = _clean(_symbol(resume)) + " (not started)"
            print("#%d  %s" % (depth, where))
            nxt = _ptr(promise["m_continuation"]["_M_fr_ptr"])
            if nxt & 1 or nxt == frame:
                break  # the task's body: its continuation is the root, tagged
            frame = nxt
            depth += 1


gdb.printing.register_pretty_printer(gdb.current_objfile(), _printers(), replace=True)
WeftTasks()
AsyncBacktrace()
