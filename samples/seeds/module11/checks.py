# Checks of module11.cpp ("Programming in Go", Module Eleven).
from check import check, increasing


def done_at_end(run):
    # A goroutine that wakes as main ends may print once more after Done!.
    run.count('Done!', 1)
    run.expect(len(run.lines) - run.index('Done!') <= 3, 'Done! is not at the end')


def counts_up(run, prefix):
    got = run.numbers(prefix + r' (\d+)')
    run.expect(got and got == list(range(len(got))), f'{prefix} lines do not count 0, 1, 2 ...')
    return len(got)


@check('11-01', '11-01', kill_after=0.5)
def _(run):
    run.expect(counts_up(run, 'Message:') >= 3, 'fewer than 3 messages in 0.5 s')


@check('11-02', '11-02')
def _(run):
    # Main does not wait: the goroutine prints a message or two at most, if
    # it gets to run before the program ends.
    run.only('Done!', r'Message: \d')
    run.count('Done!', 1)
    run.within(0, 0.5)


@check('11-03', '11-03')
def _(run):
    counts_up(run, 'Message:')
    done_at_end(run)
    run.within(0.2, 2)


@check('11-04', '11-04')
def _(run):
    counts_up(run, 'Alpha:')
    counts_up(run, 'Beta:')
    done_at_end(run)


@check('11-05', '11-05')
def _(run):
    counts_up(run, 'Anon:')
    done_at_end(run)


def lockstep(run):
    # service i is printed before its send, main i after its receive: so
    # service i comes before main i, which comes before service i+2.
    run.only(r'service:  \d', r'main \d Got back: "Message: \d"', 'Done!')
    run.expect(run.numbers(r'service:  (\d)') == list(range(6)), 'service lines are not 0 .. 5')
    for i in range(5):
        main = f'main {i} Got back: "Message: {i}"'
        run.before(f'service:  {i}', main, f'service:  {i + 2}' if i < 4 else 'Done!')
    run.last('Done!')


check('11-06', '11-06')(lockstep)
check('11-09', '11-09')(lockstep)


@check('11-07', '11-07', status=2)
def _(run):
    run.exact('')
    run.stderr_has('^fatal error: all tasks are asleep - deadlock!$')


@check('11-08', '11-08')
def _(run):
    # The service runs ahead by the 3 buffered messages, and one more that
    # waits in send: 5 received + 3 + 1 = 9 service lines.
    sizes = run.numbers(r'service:  \d buffered items  (\d)')
    run.expect(len(sizes) == 9, f'{len(sizes)} service lines, expected 9')
    run.expect(sizes == sorted(sizes) and max(sizes) == 3 and sizes[-5:] == [3] * 5,
               f'buffer sizes {sizes}')
    run.count(r'main \d Got back: "Message: \d"', 5)
    run.last('Done!')


@check('11-10', '11-10', status=2)
def _(run):
    run.before('service:  0', 'service:  1')
    run.count(r'service:  \d', 2)
    run.stderr_has('^panic: .*send on closed channel')


@check('11-11', '11-11')
def _(run):
    run.exact('''
        Received  0
        Received  1
        Received  2
        I'm done 
        ''')


@check('11-12', '11-12')
def _(run):
    run.exact('''
        true
        Received  0
        true
        Received  1
        true
        Received  2
        false
        I'm done 
        ''')


@check('11-13', '11-13')
def _(run):
    run.only(r'Even: \d+', r'Odd: \d+', 'no one is ready')
    evens, odds = run.numbers(r'Even: (\d+)'), run.numbers(r'Odd: (\d+)')
    # Each source sends at once and then after pauses of up to 100 ms, for
    # 200 ms: two values each for sure, a third unless the pauses were long.
    run.expect(evens[:2] == [0, 2] and evens == list(range(0, 2 * len(evens), 2)), f'evens {evens}')
    run.expect(odds[:2] == [1, 3] and odds == list(range(1, 2 * len(odds), 2)), f'odds {odds}')
    run.count('no one is ready', low=1)


@check('11-14', '11-14')
def _(run):
    # Racy on purpose: usually the +1 is lost.
    run.only('Final Balance= (1|100|101)')
    run.count('Final Balance= .*', 1)


@check('11-15', '11-15')
def _(run):
    run.exact('Final Balance= 550')


@check('11-16', '11-16')
def _(run):
    run.exact('Final Balance= 101')
