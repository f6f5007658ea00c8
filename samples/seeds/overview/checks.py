# Checks of overview.cpp ("An overview of parallel programming (Go edition)").
import re

from check import check


check('channel', 'channel')(lambda run: run.exact('Canada'))
check('done', 'done')(lambda run: run.exact('''
    goroutine done
    goroutine in the wait group done
    '''))
check('defer', 'defer')(lambda run: run.exact('''
    Canada
    Mexico
    '''))


@check('buffered', 'buffered', status=2)
def _(run):
    run.exact('''
        sent 1
        sent 2
        ''')
    run.stderr_has('^fatal error: all tasks are asleep - deadlock!$')


# C5, C6: three pages of 300, 200 and 300 ms and a refused connection.
FETCHED = r'Successfully fetched http://127\.0\.0\.1:\d+/delay/(\d+): 200 OK'
REFUSED = r'Error fetching http://127\.0\.0\.1:\d+/: .*[Cc]onnection refused.*'


def fetched(run, low, high):
    run.expect(run.lines[-2] == '', 'a blank line before the total')
    pages = run.lines[:-2]
    run.only(FETCHED, REFUSED, '', r'Total time taken: .*')
    run.expect(len(pages) == 4 and len(run.matching(REFUSED, pages)) == 1, 'four results, one error')
    took = run.matching(r'Total time taken: ([\d.]+)(ms|s)', [run.lines[-1]])
    run.expect(took, 'the total time')
    seconds = float(took[0].group(1)) / (1000 if took[0].group(2) == 'ms' else 1)
    run.expect(low <= seconds <= high, f'took {seconds} s, expected {low} .. {high}')
    return sorted(int(m.group(1)) for m in run.matching(FETCHED, pages))


@check('fetch', 'fetch')
def _(run):
    # Concurrently: as long as the slowest page, not the sum.
    run.expect(fetched(run, 0.3, 0.75) == [200, 300, 300], 'the three pages')
    run.expect(re.fullmatch(REFUSED, run.lines[0]), 'the refusal comes first')
    run.expect(run.lines[1].endswith('/delay/200: 200 OK'), 'then the fastest page')


@check('fetch-sequential', 'fetch-sequential')
def _(run):
    run.expect(fetched(run, 0.8, 3) == [200, 300, 300], 'the three pages')
    run.expect(re.fullmatch(REFUSED, run.lines[3]), 'in order: the refusal last')


BENCH = r'(Benchmark\w+)\t(\d+)\t(\d+) ns/op'


@check('sum', 'sum')
def _(run):
    run.count(r'Number of CPU cores: \d+', 1)
    names = [m[1] for m in run.matching(BENCH)]
    run.expect(names == ['BenchmarkGoroutineSumWithChannels', 'BenchmarkSequentialSum',
                         'BenchmarkGoroutineSumWithChannelsLarge', 'BenchmarkSequentialSumLarge'],
               f'benchmarks {names}')
    for n in (100000, 10000000):
        total = n * (n - 1) // 2
        run.count(f'sum of 0 .. {n - 1}: {total} sequentially, {total} in parallel', 1)


@check('sine', 'sine')
def _(run):
    names = [m[1] for m in run.matching(BENCH)]
    run.expect(names == [f'Benchmark{n}Goroutines' for n in (1, 2, 4, 8, 16)] + ['BenchmarkMaxGoroutines'],
               f'benchmarks {names}')
    sums = run.matching(r'sum with (\d+) goroutines: (-?[\d.]+) \(sequential (-?[\d.]+)\)')
    run.expect(len(sums) == 6, 'six sums')
    for m in sums:
        # Other chunks add in another order: equal up to rounding.
        run.expect(abs(float(m[2]) - float(m[3])) < 1e-6, f'{m[0]}')


@check('chain', 'chain')
def _(run):
    run.expect(run.lines[0] == 'Value 42 successfully passed through 10000 goroutines', 'first line')
    duration = r'\d+(\.\d+)?(ns|µs|ms|s)'
    run.expect(re.fullmatch('Time taken: ' + duration, run.lines[1]), 'Time taken: DURATION')
    run.expect(re.fullmatch('Average time per hop: ' + duration, run.lines[2]), 'Average time per hop')


def array_state(run):
    run.expect(run.lines[0] == '', 'no empty first line')
    cells = run.matching(r'Final array state: \[(\d+( \d+){9})\]')
    run.expect(len(cells) == 1, 'no array state')
    total = sum(int(v) for v in cells[0][1].split())
    run.count(f'Total sum: {total}', 1)
    return total


@check('race', 'race')
def _(run):
    array_state(run)  # racy on purpose: the total is anything


@check('atomic', 'atomic')
def _(run):
    run.expect(array_state(run) == 1000, 'the total is not 1000')


@check('bank', 'bank')
def _(run):
    # The four transfers run in any order; none can fail, so the final
    # balances are always 650 and 850.
    moves = run.matching(r'Transferred (\d+) from (\w+) to (\w+)\. New balances: (\w+)=(\d+), (\w+)=(\d+)')
    run.expect(sorted((int(m[1]), m[2]) for m in moves) ==
               [(50, 'Bob'), (100, 'Bob'), (200, 'Alice'), (300, 'Alice')], 'the four transfers')
    alice, bob = 1000, 500
    for m in moves:
        amount = int(m[1]) * (1 if m[2] == 'Alice' else -1)
        alice, bob = alice - amount, bob + amount
        got = {m[4]: int(m[5]), m[6]: int(m[7])}
        run.expect(got == {'Alice': alice, 'Bob': bob}, f'balances after {m[0]}')
    run.last('Final balances: Alice=650, Bob=850')
    run.count('.*', 5)


@check('deadlock', 'deadlock', status=2)
def _(run):
    run.same_lines('''
        Locked Alice for transfer of 200 to Bob
        Locked Bob for transfer of 100 to Alice
        ''')
    run.stderr_has('^fatal error: all tasks are asleep - deadlock!$')
