"""Runs echo_server and checks it: echo with many clients, then a graceful
stop on SIGTERM (a connection open at the signal still works during the
grace period; one that stays idle is closed when it ends)."""

import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from server_check import rest_after_stop, start  # noqa: E402

exe = sys.argv[1]
proc, out, fail, first = start([exe, '127.0.0.1:0', '700'], 'echo server on ')
host, port = first.split()[3].rsplit(':', 1)
addr = (host, int(port))


def roundtrip(sock, data):
    sock.sendall(data)
    got = b''
    while len(got) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


errors = []


def client(i):
    try:
        with socket.create_connection(addr, timeout=10) as s:
            data = bytes([65 + i % 26]) * (1000 + 997 * i)
            for _ in range(3):
                if roundtrip(s, data) != data:
                    errors.append(f'client {i}: wrong echo')
    except OSError as e:
        errors.append(f'client {i}: {e}')


threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    fail('; '.join(errors[:5]))

busy = socket.create_connection(addr, timeout=10)
idle = socket.create_connection(addr, timeout=10)
roundtrip(busy, b'warm')
roundtrip(idle, b'warm')
proc.send_signal(signal.SIGTERM)
line = proc.stdout.readline().rstrip()
out.append(line)
# The two connections above are open; a client of the round before may
# still be counted if the server has not yet read its close (the count is
# exact again at the end of the grace period, checked below).
m = re.match(r'stopping: (\d+) connection\(s\) open', line)
if not m or int(m.group(1)) < 2:
    fail('no graceful stop message')
# The open connection still works during the grace period.
if roundtrip(busy, b'after the signal') != b'after the signal':
    fail('connection broken during the grace period')
busy.close()
# New connections are refused.
try:
    socket.create_connection(addr, timeout=2).close()
    fail('still accepting after the signal')
except OSError:
    pass
rest = rest_after_stop(proc, out, fail)
if proc.returncode != 0:
    fail(f'exit status {proc.returncode}')
if 'grace period over: closing 1 connection(s)' not in rest or not rest.rstrip().endswith('stopped'):
    fail('the idle connection was not closed at the end of the grace period')
if idle.recv(10) != b'':
    fail('idle connection not closed')
print('\n'.join(out))
print('ok')
