"""Runs chat_server and checks it over loopback: joins, broadcast messages,
a rejected line, a slow client evicted while the others go on, leaving, and
a graceful stop on SIGTERM."""

import json
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from server_check import rest_after_stop, start  # noqa: E402

exe = sys.argv[1]
proc, out, fail, first = start([exe, '127.0.0.1:0'], 'chat server on ')
host, port = first.split()[3].rsplit(':', 1)
addr = (host, int(port))


class Client:
    def __init__(self):
        self.s = socket.create_connection(addr, timeout=10)
        self.buf = b''

    def send(self, obj):
        line = obj if isinstance(obj, str) else json.dumps(obj)
        self.s.sendall(line.encode() + b'\n')

    def recv(self):
        while b'\n' not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def until(self, pred, what):
        for _ in range(1000):
            m = self.recv()
            if pred(m):
                return m
        fail('never got ' + what)


a = Client()
me_a = a.recv()
if me_a.get('type') != 'welcome':
    fail(f'no welcome: {me_a}')
b = Client()
me_b = b.recv()['you']
a.until(lambda m: m == {'type': 'join', 'who': me_b}, 'the join of b')
b.send({'text': 'hello "all"'})
want = {'type': 'message', 'from': me_b, 'text': 'hello "all"'}
a.until(lambda m: m == want, 'b\'s message at a')
b.until(lambda m: m == want, 'b\'s own message')
a.send('not json')
a.until(lambda m: m.get('type') == 'error', 'an error for a bad line')

# A client that never reads: its queue fills and it is evicted; a and b
# keep chatting.
# A client that never reads: once the kernel's buffers toward it are full,
# its queue fills and it is evicted, while a and b keep chatting (their
# readers drain them meanwhile).
slow = socket.socket()
slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
slow.connect(addr)
slow_name = a.until(lambda m: m.get('type') == 'join', 'the slow client\'s join')['who']
b.until(lambda m: m == {'type': 'join', 'who': slow_name}, 'the slow client\'s join at b')


def drain(c, last, seen):
    try:
        while True:
            m = c.recv()
            if m.get('type') == 'message' and m['text'].startswith(last):
                seen.append(m)
                return
    except (OSError, EOFError, ValueError):
        return


flood = 400
last = f'{flood - 1} '
seen_a, seen_b = [], []
ta = threading.Thread(target=drain, args=(a, last, seen_a))
tb = threading.Thread(target=drain, args=(b, last, seen_b))
ta.start()
tb.start()
big = 'x' * 3000
for i in range(flood):
    a.send({'text': f'{i} {big}'})
    if i % 20 == 19:
        time.sleep(0.005)  # let a's and b's readers keep up
ta.join(30)
tb.join(30)
if not seen_a or not seen_b:
    fail(f'a and b did not get the whole flood: {len(seen_a)} {len(seen_b)}; server: {proc.stdout.readline()!r}')
evicted = False
deadline = time.time() + 10
while time.time() < deadline and not evicted:
    line = proc.stdout.readline()
    out.append(line.rstrip())
    evicted = line.startswith(f'evicting {slow_name}')
if not evicted:
    fail('the slow client was not evicted')
a.send({'text': 'still here'})
b.until(lambda m: m.get('text') == 'still here', 'a message after the eviction')

a.s.close()
b.until(lambda m: m == {'type': 'leave', 'who': me_a['you']}, 'a leaving')

proc.send_signal(signal.SIGTERM)
rest = rest_after_stop(proc, out, fail)
if proc.returncode != 0 or not rest.rstrip().endswith('stopped'):
    fail(f'exit status {proc.returncode}')
try:
    if b.s.recv(100) and b.s.recv(100):
        pass
except OSError:
    pass
print('\n'.join(out))
print('ok')
