# Checks of the ports of "Effective Concurrency in Go" (effective/chN.cpp).
# Test names are CHAPTER-EXAMPLE, e.g. ch2-close runs `ch2 close`.
import re

from check import check, increasing

DEADLOCK = '^fatal error: all tasks are asleep - deadlock!$'


def deadlocked(run):
    run.exact('')
    run.stderr_has(DEADLOCK)


def example(name, **kw):
    chapter, sample = name.split('-', 1)
    return check(name, sample, **kw)


# Chapter 2

@example('ch2-hello')
def _(run):
    run.only('Hello from main', 'Hello from goroutine')
    run.count('Hello from main', 1)
    run.count('Hello from goroutine', high=1)


@example('ch2-arguments')
def _(run):
    run.only('Goroutine [abc]')
    run.expect(len(set(run.lines)) == len(run.lines), 'a line twice')


@example('ch2-closures')
def _(run):
    run.same_lines(['Goroutine a', 'Goroutine b', 'Goroutine c'])


@example('ch2-buffered')
def _(run):
    run.exact('''
        len 2 cap 2
        received 1
        received 2
        sent 4
        received 3
        received 4
        ''')


@example('ch2-close')
def _(run):
    run.exact('''
        1 true
        2 true
        0 false
        0 false
        ''')


example('ch2-unbuffered')(lambda run: run.exact('true'))
example('ch2-worker-pool')(lambda run: run.exact('sum of the squares of 1 .. 100: 338350'))


@example('ch2-stoppable')
def _(run):
    run.exact('''
        request 1: result 10
        request 2: result 20
        request 3: result 30
        cleanup
        ''')


example('ch2-select-evaluation')(lambda run: run.exact('2'))


@example('ch2-select-receive-first')
def _(run):
    # 1 if the receiver of ch1 was ready when the select looked, else nothing.
    run.expect(run.out in ('', '1\n'), 'prints 1 or nothing')


def cache(run):
    want = {'a': 'value of a', 'b': 'value of b', 'missing': 'not found'}
    got = run.matching(r'(\w+): (.*)', run.lines[:-1])
    run.expect(len(got) == 27 and all(want[m[1]] == m[2] for m in got), 'wrong values')
    # Concurrent misses may load an entry more than once, never more often
    # than it is asked for.
    loads = run.numbers(r'loads: (\d+)')
    run.expect(loads and 3 <= loads[0] <= 27, f'loads {loads}')


example('ch2-cache-mutex')(cache)
example('ch2-cache-rw-mutex')(cache)


@example('ch2-wait-group')
def _(run):
    run.exact('''
        10 goroutines done
        result of service 1, result of service 2
        ''')


example('ch2-wait-deadlock', status=2)(deadlocked)


def zero_to_nine(run):
    run.same_lines([str(i) for i in range(10)])


example('ch2-wait-fixed-reader')(zero_to_nine)
example('ch2-wait-fixed-closer')(zero_to_nine)


@example('ch2-condition')
def _(run):
    run.only('Queue is full', 'Queue is empty', r'\d+')
    run.count(r'\d+', low=5)
    # Twice as many producers as consumers: the queue of 10 fills up.
    run.count('Queue is full', low=1)


# Chapter 3

example('ch3-sequenced')(lambda run: run.exact('1 3'))
for name in ('send-before-receive', 'receive-before-send', 'mutex', 'atomic', 'wait-group'):
    example('ch3-' + name)(lambda run: run.exact('1'))
example('ch3-go-statement')(lambda run: run.exact('Before goroutine'))
example('ch3-racy-go')(lambda run: run.only('0|1'))


@example('ch3-racy-channel')
def _(run):
    run.only(r'[1-5]')
    run.count('.*', 5)


example('ch3-semaphore')(lambda run: run.only('100 jobs done, at most [1-5] at once'))
example('ch3-once')(lambda run: run.exact('30 right answers, 3 loads'))


# Chapter 4

@example('ch4-producer-consumer')
def _(run):
    run.only(r'Producer \d sent \d+', r'Consumer \d received \d+')
    sent = sorted(m[1] for m in run.matching(r'Producer \d sent (\d+)'))
    received = sorted(m[1] for m in run.matching(r'Consumer \d received (\d+)'))
    # A producer prints after its send completed: what was sent was received.
    run.expect(sent == received and len(sent) >= 20, f'{len(sent)} sent, {len(received)} received')
    run.within(1, 3)


def philosophers(run):
    run.only(r'Philosopher [0-4] is (thinking|eating)')
    for p in range(5):
        run.count(f'Philosopher {p} is thinking', low=1)


for name in ('philosophers-mutex', 'philosophers-ordered', 'philosophers-try-lock',
             'philosophers-channel'):
    example('ch4-' + name)(philosophers)


def ordered_philosophers(run):
    philosophers(run)
    run.count(r'Philosopher [0-4] is eating', low=5)  # nobody waits forever


example('ch4-philosophers-ordered')(ordered_philosophers)


def rate_limited(run):
    times = run.numbers(r'Request: (\d+) ms')
    run.expect(len(times) == 25, f'{len(times)} requests')
    run.expect(times[9] < 15, f'the burst of 10 took {times[9]} ms')
    # Then one every 20 ms: the last 15 come after about 300 ms.
    run.expect(250 <= times[-1] <= 700, f'the last request came at {times[-1]} ms')
    gaps = [b - a for a, b in zip(times[10:], times[11:])]
    run.expect(sum(gaps) / len(gaps) >= 15, f'gaps {gaps}')


for name in ('channel-rate', 'limiter', 'rate-limiter'):
    example('ch4-' + name)(rate_limited)


# Chapter 5: the pipelines print Go's JSON for rows 1 .. 100, in row order
# except where workers or a fan-in without ordering reorder them.

def in_order(run):
    run.golden('pipelines.golden')


def any_order(run):
    with open(__file__.replace('checks.py', 'pipelines.golden'), encoding='utf-8') as f:
        run.same_lines(f.read().splitlines())


for name, f in (('synchronous', in_order), ('asynchronous', in_order), ('worker-pool', any_order),
                ('fan-in', any_order), ('ordered', in_order)):
    check('pipelines-' + name, name, '{dir}/sample.csv')(f)


# Chapter 5: grep

GREP = ['a.txt#1: channel', 'a.txt#3: Channel', 'sub/c.txt#2: channel', 'sub/c.txt#4: channel']


@check('grep-v1', 'v1', '{dir}/grep-data', '[Cc]hannel')
def _(run):
    run.same_lines([f'{run.dir}/grep-data/{l}' for l in GREP])


@check('grep-v2', 'v2', '{dir}/grep-data', '[Cc]hannel')
def _(run):
    run.exact('\n'.join(f'{run.dir}/grep-data/{l}'.replace('#', ' #') for l in GREP))


# Chapter 6

@example('ch6-results')
def _(run):
    run.exact('''
        result1: 10
        result2: error: computation 2 failed
        ''')


@example('ch6-cancel-channel')
def _(run):
    run.exact('''
        result1: error: computation 1 failed
        result2: canceled
        ''')


@example('ch6-error-channel')
def _(run):
    run.exact('''
        result1: canceled
        result2: canceled
        error: computation 2 failed
        ''')


@example('ch6-wait-group')
def _(run):
    run.exact('''
        err1: ""
        err2: "computation 2 failed"
        ''')


@example('ch6-task-group')
def _(run):
    run.exact('''
        computation 2: canceled
        wait: computation 1 failed
        ''')


example('ch6-panic-to-error')(lambda run: run.only('recovered: .*'))


@example('ch6-pipeline-errors')
def _(run):
    run.only(r'value: [135]', r'error: "(two|4x)": .*')
    run.before('value: 1', 'value: 3', 'value: 5')
    run.count('error: .*', 2)


@example('ch6-internal-panic')
def _(run):
    run.exact('''
        1: ""
        -1: "negative input"
        0: panics on: a real bug
        ''')


@example('ch6-structured-errors')
def _(run):
    run.exact('''
        GET /users/42: 200 Arthur Dent
        GET /users/7: 404 1001: no such user
        GET /users/x7: 400 1002: malformed user id
        GET /users/db-down: 500 database unavailable
        ''')


@example('ch6-panic-handler')
def _(run):
    # The panic is reported once, answered with 500, and the next request
    # is served as usual.
    run.expect(len(run.lines) == 4, 'four lines')
    run.expect(run.lines[0] == 'GET /items/0: 200 apple', 'the first request')
    run.expect(re.fullmatch(r'panic: GET /items/7: .*7.*', run.lines[1]), 'the panic is reported')
    run.expect(run.lines[2] == 'GET /items/7: 500 Internal Server Error', 'answered with 500')
    run.expect(run.lines[3] == 'GET /items/1: 200 banana', 'the server goes on')


# Chapter 7

def timed_out(run):
    run.count('Timeout', 1)
    x = run.numbers(r'(\d+)')
    # 100 steps of at least 1 ms: a bit under 100, sleeps run late.
    run.expect(len(x) == 1 and 30 <= x[0] <= 101, f'x = {x}')


example('ch7-timer-mockup')(lambda run: run.exact('fired after 50 ms'))


for name in ('timer', 'after-func', 'after'):
    example('ch7-' + name)(timed_out)
example('ch7-stop')(lambda run: run.exact('stopped in time: true'))


@example('ch7-reset')
def _(run):
    run.expect(run.lines[0] == 'reset at 20 ms', 'reset at 20 ms')
    t = run.numbers(r'Timeout at (\d+) ms')
    run.expect(t and 115 <= t[0] <= 200, f'the reset timer fired at {t} ms, not 20 + 100')


@example('ch7-periodic')
def _(run):
    runs = run.matching(r'run (\d) at (\d+) ms')
    run.expect([int(m[1]) for m in runs] == [1, 2, 3, 4, 5], 'five runs')
    at = [int(m[2]) for m in runs]
    # Each run starts 20 ms after the 5 ms of the one before: 25 ms apart.
    run.expect(all(24 <= b - a <= 60 for a, b in zip(at, at[1:])), f'runs at {at}')


@example('ch7-ticker')
def _(run):
    ticks = run.numbers(r'Tick: (\d+)')
    run.expect(len(ticks) in (19, 20, 21), f'{len(ticks)} ticks')
    # No drift: the nth tick is at n * 50 ms, a little late at most.
    late = [t - 50 * (i + 1) for i, t in enumerate(ticks)]
    run.expect(all(-2 <= d <= 30 for d in late), f'ticks at {ticks}')


@example('ch7-slow-receiver')
def _(run):
    t = run.numbers(r'Tick: (\d+)')
    run.expect(len(t) == 6, '6 ticks')
    # 20, then the pending tick at once after 70 ms of work (~90), then 100,
    # 120 ... on the original rhythm.
    run.expect(15 <= t[0] <= 40 and 85 <= t[1] <= 115, f'ticks {t}')
    run.expect(all(abs((b - t[2]) - 20 * i) <= 10 for i, b in enumerate(t[2:])), f'ticks {t}')
    run.expect(t[2] - t[1] <= 20, f'ticks {t}')


@example('ch7-heartbeat')
def _(run):
    run.before('step 1 done', 'step 4 done')
    m = run.matching(r'No progress since (\d+) ms, terminating')
    end = run.numbers(r'terminated at (\d+) ms')
    run.expect(m and end and int(m[0][1]) < end[0] <= 400, 'terminated')
    run.count('step 5 done', 0)


# Chapter 8

@example('ch8-cancel')
def _(run):
    run.exact('''
        stopped after some steps: context canceled
        the parent is not cancelled: <nil>
        ''')


@example('ch8-timeout')
def _(run):
    run.exact('''
        stopped after some steps: context deadline exceeded
        child: context deadline exceeded
        ''')


example('ch8-request-id')(lambda run: run.exact('0 1000 1001'))


@example('ch8-dashboard')
def _(run):
    t = ' 100:1000 101:1010 102:1020 200:2000 201:2010 202:2020'
    run.exact(f'''
        stats of alice, account 4200, transactions{t}
        stats of alice, account 0, transactions{t}
        ''')


@example('ch8-semaphore')
def _(run):
    run.only(r'(channel|weft::semaphore): 20 requests, at most [1-3] at once')
    run.count('.*', 2)


def moving_average_lines(skip_row=None):
    import math
    rows = []
    for i in range(40):
        v = math.floor(500 + 500 * math.sin(i / 4.0) + 0.5) / 1000
        rows.append((1000 * i, 0.0001 if i == 3 else v))
    rows = [r for i, r in enumerate(rows) if r[1] >= 0.001 and i != skip_row]
    window, out = [], []
    for at, v in rows:
        if len(window) == 5:
            avg = sum(window) / 5
            if avg > 0.5:
                out.append('{At:%d Value:%g Avg:%g}' % (at, v, avg))
            window.pop(0)
        window.append(v)
    return out, rows


@example('ch8-stream')
def _(run):
    run.same_lines(moving_average_lines()[0])  # and in order:
    run.expect(run.lines == moving_average_lines()[0], 'out of order')


def check_stream_error(run, lines):
    want, _ = moving_average_lines(skip_row=30)
    run.expect(lines and lines[-1] == 'row 30: bad value', 'the error is not last')
    got = lines[:-1]
    # The error cancels the stream: a prefix of the results, at least those
    # of the rows before the error.
    before = len([l for l in want if int(l.split(':')[1].split()[0]) < 30000])
    run.expect(got == want[:len(got)] and len(got) >= before, f'{len(got)} results')


@example('ch8-stream-error')
def _(run):
    check_stream_error(run, run.lines)


@example('ch8-tcp-server')
def _(run):
    run.exact('''
        client: sent "hello", got back "hello"
        straggler: sent "still here", got back "still here"
        sending SIGTERM to this process
        signal "Terminated": stopping the listener
        listen returned
        connections still open after 200 ms: leaving them be
        the straggler hung up: all connections closed
        ''')
    run.within(0.2, 10)


@example('ch8-http-service')
def _(run):
    t = ','.join('{"id":%d,"amount":%d}' % (i, i * 10) for i in (100, 101, 102, 200, 201, 202))
    run.exact(f'''
        GET without credentials: 401 Unauthorized
        GET: 200 {{"user_data":"stats of alice","account_data":4200,"last_transactions":[{t}]}}
        POST {{"refresh_seconds": 30, "layout": "compact"}}: 200
        POST {{"refresh_seconds": : 400 malformed parameters
        POST of 20000 bytes: 413 Content Too Large
        PUT: 405 Unhandled request type
        alice's dashboard: refreshed every 30 s, layout compact
        ''')


@example('ch8-http-stream')
def _(run):
    # The same results as ch8-stream and ch8-stream-error, over HTTP.
    second = run.index('GET /db?error=1')
    run.expect(run.lines[0] == 'GET /db', 'GET /db first')
    run.expect(run.lines[1:second] == moving_average_lines()[0], 'GET /db: not the stream\'s results')
    check_stream_error(run, run.lines[second + 1:])


@example('ch8-chat')
def _(run):
    run.exact('''
        client 1 got "hi, I'm client 1" from client 1
        client 1 got "hi, I'm client 2" from client 2
        client 2 got "hi, I'm client 2" from client 2
        client 1 got "hi, I'm client 3" from client 3
        client 2 got "hi, I'm client 3" from client 3
        client 3 got "hi, I'm client 3" from client 3
        client 1 got "hi, I'm slow" from slow client
        client 2 got "hi, I'm slow" from slow client
        client 3 got "hi, I'm slow" from slow client
        controller: a client's buffer is full: evicted
        client 1 sent 500 long messages; clients 1, 2 and 3 got them all
        slow client: the server hung up before the end: evicted
        all connections closed
        ''')


# Chapter 9

example('ch9-publish')(lambda run: run.exact('Done!'))
example('ch9-happened-before')(lambda run: run.expect(run.out in ('', '1\n'), '1 or nothing'))
example('ch9-cas-lock')(lambda run: run.exact('compare-and-swap: entered sometimes, at most 1 inside at once'))
example('ch9-load-store')(lambda run: run.only(r'load, then store: entered sometimes, at most [1-8] inside at once'))


@example('ch9-counter')
def _(run):
    v = run.numbers(r'(\d+)')
    run.expect(v == sorted(v) and v[-1] == 10000 and v.count(10000) == 1, 'not increasing to 10000')


@example('ch9-progress')
def _(run):
    p = run.numbers(r'Progress: (\d+)')
    run.expect(increasing(p), f'progress {p}')
    run.expect(run.lines[-2:] == ['No progress since last time, canceling', 'Canceled'], 'wrong end')


@example('ch9-cancellation')
def _(run):
    ms = run.numbers(r'after (\d+) ms')
    run.expect(run.lines[0] == 'Cancelled' and ms and 500 <= ms[0] <= 800, f'cancelled after {ms}')


@example('ch9-compare-and-swap')
def _(run):
    won = run.count('Set value successful', low=1, high=4)
    run.count('Another goroutine modified the value', 4 - won)
    run.last(f'value {won} after {won} successful swaps')


# Chapter 10

example('ch10-deadlock', status=2)(deadlocked)


example('ch10-list')(lambda run: run.exact('consistent'))


@example('ch10-monitor')
def _(run):
    run.expect(run.lines[0] == 'call 1: response 1', 'the fast call')
    run.only(r'call \d: (response \d|busy|timeout)', 'alert: no call completed for 200 ms')
    run.count(r'call [3-7]: busy', 2)
    run.count(r'call [3-7]: timeout', 3)
    run.last('alert: no call completed for 200 ms')
    # E10.5: the dump shows the three slow calls asleep in slow_func.
    run.stderr_has(r'^task \d+ \[sleep, ')
    run.expect(run.err.count('slow_func') >= 3, 'the slow calls are in the dump')


@example('ch10-timeout-stack-trace')
def _(run):
    run.exact('''
        request 1 done
        request 2 done
        ''')
    # One dump, showing request 2 waiting for the lock inside handle.
    run.expect(run.err.count('[mutex lock, ') == 1, 'one task waits for the lock')
    run.stderr_has(r'^task \d+ \[mutex lock, ')
    run.stderr_has('handle')


@example('ch10-restart')
def _(run):
    n = run.numbers(r'instance (\d+) started')
    run.expect(n == list(range(1, len(n) + 1)) and len(n) >= 2, f'instances {n}')
    # Each instance beats 5 times (50 ms), then hangs for the 50 ms timeout.
    run.count('Timeout, restarting func', low=len(n) - 1, high=len(n))
    run.only(r'instance \d+ started', 'Timeout, restarting func')


# Chapter 1

@example('ch1-cooperative', kill_after=0.5)
def _(run):
    # Hangs: the spinning task holds the only worker (and main waits).
    run.expect(run.out in ('', 'hello\n'), 'hello or nothing')


example('ch1-withdraw-racy')(lambda run: run.only(r'balance (-1|4|5), [01] insufficient funds'))
example('ch1-withdraw')(lambda run: run.only(r'balance 4, 1 insufficient funds|balance 5, 1 insufficient funds'))
example('ch1-transfer-ordered')(lambda run: run.exact('acct1 15, acct2 10'))


example('ch1-transfer-deadlock', status=2)(deadlocked)


example('ch1-deadlock', status=2)(deadlocked)


example('ch1-starvation')(lambda run: run.exact('the polite task got the lock its share of the time'))


@example('ch1-producer-failure')
def _(run):
    run.same_lines(['got 0', 'got 1', 'Recovered cannot produce value 2', 'done'])
    run.before('got 0', 'got 1', 'done')
    run.before('Recovered cannot produce value 2', 'done')


@example('ch1-livelock')
def _(run):
    run.only(r'worker [12] done after (1 try|some tries)')
    run.count('.*', 2)


@example('ch2-signal')
def _(run):
    run.only(r'Tick\.\.\.', r'Terminating\.\.\.')
    run.count(r'Tick\.\.\.', low=3, high=6)
    run.last('Terminating...')
