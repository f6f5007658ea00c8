"""Runs echo_server and checks it: echo with many clients, then a graceful
stop on SIGTERM (a connection open at the signal still works during the
grace period; one that stays idle is closed when it ends)."""

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time

exe = sys.argv[1]
proc = subprocess.Popen([exe, '127.0.0.1:0', '700'], stdout=subprocess.PIPE, text=True)
# Never leave the server behind, whatever happens to this script.
atexit.register(lambda: proc.poll() is None and proc.kill())
out = []


def fail(msg):
    proc.kill()
    print('\n'.join(out))
    print('FAIL:', msg)
    sys.exit(1)


first = proc.stdout.readline()
out.append(first.rstrip())
if not first.startswith('echo server on '):
    fail('unexpected first line')
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
if not line.startswith('stopping: 2 connection(s) open'):
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
try:
    rest = proc.communicate(timeout=10)[0]
except subprocess.TimeoutExpired:
    fail('still running 10 s after the signal')
out.extend(rest.splitlines())
if proc.returncode != 0:
    fail(f'exit status {proc.returncode}')
if 'grace period over: closing 1 connection(s)' not in rest or not rest.rstrip().endswith('stopped'):
    fail('the idle connection was not closed at the end of the grace period')
if idle.recv(10) != b'':
    fail('idle connection not closed')
print('\n'.join(out))
print('ok')
