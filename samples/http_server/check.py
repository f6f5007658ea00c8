"""Runs http_server and checks its endpoints over loopback, then stops it
with SIGTERM while a streaming request is in progress."""

import base64
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from server_check import rest_after_stop, start  # noqa: E402

exe = sys.argv[1]
proc, out, fail, first = start([exe, '127.0.0.1:0'], 'http_server listening on http://')
base = first.split()[3].rstrip('/')
out.append(proc.stdout.readline().rstrip())


def get(path, headers=None):
    req = urllib.request.Request(base + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


status, body = get('/')
if status != 200 or 'curl' not in body:
    fail(f'/: {status} {body!r}')
status, body = get('/plaintext')
if (status, body) != (200, 'Hello, World!'):
    fail(f'/plaintext: {status} {body!r}')
status, body = get('/api/hello/gopher')
if (status, body) != (200, '{"greeting":"hello, gopher"}\n'):
    fail(f'/api/hello: {status} {body!r}')
for _ in range(5):
    status, body = get('/api/dashboard')
    if status != 200 or body.count('"users"') != 1 or body.count('"orders"') != 1 or \
            body.count('"weather"') != 1:
        fail(f'/api/dashboard: {status} {body!r}')
status, body = get('/stream?count=3')
if (status, body) != (200, 'tick 1\ntick 2\ntick 3\n'):
    fail(f'/stream: {status} {body!r}')
status, _ = get('/admin/stats')
if status != 401:
    fail(f'/admin/stats without credentials: {status}')
auth = {'Authorization': 'Basic ' + base64.b64encode(b'admin:weft').decode()}
status, body = get('/admin/stats', auth)
if status != 200 or not body.startswith('requests: '):
    fail(f'/admin/stats: {status} {body!r}')
status, body = get('/debug/tasks')
if status != 200 or not body.startswith('tasks: ') or '\ntask ' not in body:
    fail(f'/debug/tasks: {status} {body!r}')
status, _ = get('/nowhere')
if status != 404:
    fail(f'/nowhere: {status}')

# Hostile input: the server answers 400 and keeps serving.
host, port = base[len('http://'):].rsplit(':', 1)
with socket.create_connection((host, int(port)), timeout=10) as s:
    s.sendall(b'GET / HTTP/1.1\nHost: x\r\n\r\n')
    if not s.recv(100).startswith(b'HTTP/1.1 400 '):
        fail('bare LF not rejected')

# A stream in progress finishes during the graceful stop.
result = {}


def streamer():
    result['got'] = get('/stream?count=5')


t = threading.Thread(target=streamer)
t.start()
time.sleep(0.15)
proc.send_signal(signal.SIGTERM)
t.join()
if result.get('got') != (200, ''.join(f'tick {i}\n' for i in range(1, 6))):
    fail(f'stream cut by the stop: {result.get("got")!r}')
rest = rest_after_stop(proc, out, fail)
if proc.returncode != 0 or 'stopped after' not in rest:
    fail(f'exit status {proc.returncode}')
print('\n'.join(out))
print('ok')
