# Checks of in_action.cpp ("Go in Action", chapter 6).
import string

from check import check, increasing

LOWER = ' '.join(string.ascii_lowercase * 3) + ' '
UPPER = ' '.join(string.ascii_uppercase * 3) + ' '


@check('6.1', '6.1')
def _(run):
    # One worker: a task runs until it waits, so one alphabet comes whole
    # before the other (Go runs the newer goroutine first: upper case).
    run.expect(run.lines[:2] == ['Start Goroutines', 'Waiting To Finish'], 'wrong header')
    run.expect(run.lines[2] in (UPPER + LOWER, LOWER + UPPER), 'the alphabets interleave')
    run.expect(run.lines[3:] == ['Terminating Program'], 'wrong end')


@check('6.7', '6.7')
def _(run):
    # Two workers: the alphabets may interleave, each in its own order, and
    # may start before main prints "Waiting To Finish".
    run.expect(run.out.startswith('Start Goroutines\n') and run.out.count('Waiting To Finish\n') == 1,
               'wrong header')
    run.expect(run.out.endswith('\nTerminating Program\n'), 'wrong end')
    letters = run.out.replace('Waiting To Finish\n', '').split('\n')[1].split()
    run.expect(''.join(c for c in letters if c.islower()) == string.ascii_lowercase * 3, 'lower case')
    run.expect(''.join(c for c in letters if c.isupper()) == string.ascii_uppercase * 3, 'upper case')


@check('6.4', '6.4')
def _(run):
    primes = [n for n in range(2, 5000) if all(n % d for d in range(2, n))]
    run.expect(run.lines[:2] == ['Create Goroutines', 'Waiting To Finish'], 'wrong header')
    blocks = [[f'{p}:{n}' for n in primes] + [f'Completed {p}'] for p in 'AB']
    # Without preemption, each task runs to its end once it starts.
    run.expect(run.lines[2:-1] in (blocks[0] + blocks[1], blocks[1] + blocks[0]), 'prime lines')
    run.last('Terminating Program')


check('6.9', '6.9')(lambda run: run.exact('Final Counter: 2'))
check('6.13', '6.13')(lambda run: run.exact('Final Counter: 4'))
check('6.16', '6.16')(lambda run: run.exact('Final Counter: 4'))


@check('6.15', '6.15')
def _(run):
    for name in 'AB':
        run.count(f'Doing {name} Work', low=4, high=6)
        run.before('Shutdown Now', f'Shutting {name} Down')
    run.expect(run.lines.index('Shutdown Now') >= 8, 'Shutdown Now too early')
    run.within(1, 3)


@check('6.20', '6.20')
def _(run):
    players = ('Nadal', 'Djokovic')
    hits = run.matching(r'Player (\w+) Hit (\d+)')
    run.expect([int(m[2]) for m in hits] == list(range(1, len(hits) + 1)), 'hits do not count up')
    run.expect(all(a[1] != b[1] for a, b in zip(hits, hits[1:])), 'a player hit twice in a row')
    missed, won = run.matching(r'Player (\w+) Missed'), run.matching(r'Player (\w+) Won')
    run.expect(len(missed) == 1 and len(won) == 1 and missed[0][1] != won[0][1], 'one miss, one win')
    run.expect(run.lines[-2:] == [missed[0][0], won[0][0]], 'the game does not end with miss, win')
    if hits:
        run.expect(hits[-1][1] != missed[0][1], 'the player who missed hit the last ball')
    run.expect({m[1] for m in hits + missed + won} <= set(players), 'unknown player')


@check('6.22', '6.22')
def _(run):
    run.exact('''
        Runner 1 Running With Baton
        Runner 2 To The Line
        Runner 1 Exchange With Runner 2
        Runner 2 Running With Baton
        Runner 3 To The Line
        Runner 2 Exchange With Runner 3
        Runner 3 Running With Baton
        Runner 4 To The Line
        Runner 3 Exchange With Runner 4
        Runner 4 Running With Baton
        Runner 4 Finished, Race Over
        ''')
    run.within(0.35, 2)


@check('6.24', '6.24')
def _(run):
    run.only(r'Worker: [1-4] : (Started|Completed) Task : \d+', r'Worker: [1-4] : Shutting Down')
    for t in range(1, 11):
        started = run.matching(rf'Worker: (\d) : Started Task : {t}')
        completed = run.matching(rf'Worker: (\d) : Completed Task : {t}')
        run.expect(len(started) == 1 and len(completed) == 1, f'task {t} not started and completed once')
        run.expect(started[0][1] == completed[0][1], f'task {t} completed by another worker')
        run.before(started[0][0], completed[0][0])
    for w in range(1, 5):
        mine = [l for l in run.lines if l.startswith(f'Worker: {w} :')]
        run.expect(mine and mine[-1] == f'Worker: {w} : Shutting Down' and
                   mine.count(mine[-1]) == 1, f'worker {w} does not shut down once, last')
        started = [l for l in mine if 'Started' in l]
        completed = [l.replace('Completed', 'Started') for l in mine if 'Completed' in l]
        run.expect(started == completed, f'worker {w} started a task before completing the last')
