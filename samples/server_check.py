"""What the sample servers' checks share: start the server, fail with what
it printed, and collect the rest of its output once it stops."""

import atexit
import subprocess
import sys


def start(args, banner):
    """Starts args; returns (proc, out, fail, first line). out collects the
    lines the server printed; fail(msg) kills it, prints them and exits 1.
    The server never outlives the script."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    atexit.register(lambda: proc.poll() is None and proc.kill())
    out = []

    def fail(msg):
        proc.kill()
        print('\n'.join(out))
        print('FAIL:', msg)
        sys.exit(1)

    first = proc.stdout.readline()
    out.append(first.rstrip())
    if not first.startswith(banner):
        fail('unexpected first line')
    return proc, out, fail, first


def rest_after_stop(proc, out, fail, timeout=10):
    """Waits for the server to end (after a stop signal) and returns what it
    printed meanwhile, also added to out."""
    try:
        rest = proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        fail(f'still running {timeout} s after the signal')
    out.extend(rest.splitlines())
    return rest
