#!/usr/bin/env python3
"""Runs one seed sample and checks what it prints.

usage: check.py BOOK/NAME EXECUTABLE

BOOK/checks.py (next to this file) registers NAME with @check: the arguments
to run the sample with, the exit status it must end with, and a function that
inspects the run. Most checks compare the output exactly, as Go's would be;
where Go's output depends on scheduling they check invariants instead: the set
of lines, counts, which line must come before which, timings within tolerant
bounds.
"""

import importlib.util
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Failed(Exception):
    pass


class Run:
    """What one run of a sample printed, and assertions about it."""

    def __init__(self, book, out, err, status, seconds):
        self.book, self.out, self.err = book, out, err
        self.dir = os.path.join(HERE, book)
        self.status, self.seconds = status, seconds
        self.lines = out.splitlines()

    def expect(self, condition, message):
        if not condition:
            raise Failed(message)

    def exact(self, text):
        """The output is text, byte for byte (text is dedented)."""
        want = dedent(text)
        if self.out != want:
            raise Failed('output differs from the expected:\n' + want)

    def golden(self, name):
        """The output equals the file BOOK/NAME."""
        with open(os.path.join(HERE, self.book, name), encoding='utf-8') as f:
            want = f.read()
        if self.out != want:
            raise Failed('output differs from ' + self.book + '/' + name)

    def same_lines(self, text_or_lines):
        """The output has these lines, in any order."""
        want = text_or_lines if isinstance(text_or_lines, list) else dedent(text_or_lines).splitlines()
        self.expect(sorted(self.lines) == sorted(want),
                    'the lines differ from the expected set:\n' + '\n'.join(sorted(want)))

    def matching(self, pattern, lines=None):
        """The match objects of the lines that fully match pattern, in order."""
        rx = re.compile(pattern)
        return [m for m in (rx.fullmatch(l) for l in (self.lines if lines is None else lines)) if m]

    def count(self, pattern, n=None, low=None, high=None):
        k = len(self.matching(pattern))
        if n is not None:
            self.expect(k == n, f'{k} lines match {pattern!r}, expected {n}')
        if low is not None:
            self.expect(k >= low, f'{k} lines match {pattern!r}, expected at least {low}')
        if high is not None:
            self.expect(k <= high, f'{k} lines match {pattern!r}, expected at most {high}')
        return k

    def only(self, *patterns):
        """Every line matches one of the patterns."""
        for l in self.lines:
            self.expect(any(re.fullmatch(p, l) for p in patterns), f'unexpected line {l!r}')

    def index(self, line):
        self.expect(line in self.lines, f'missing line {line!r}')
        return self.lines.index(line)

    def before(self, *lines):
        """Each line is printed, each before the next."""
        at = [self.index(l) for l in lines]
        self.expect(at == sorted(at), 'not in this order: ' + ' / '.join(lines))

    def last(self, line):
        self.expect(self.lines and self.lines[-1] == line, f'the last line is not {line!r}')

    def numbers(self, pattern):
        """The first group of each line matching pattern, as ints."""
        return [int(m.group(1)) for m in self.matching(pattern)]

    def within(self, low, high):
        self.expect(low <= self.seconds <= high,
                    f'ran {self.seconds:.2f} s, expected between {low} and {high} s')

    def stderr_has(self, pattern):
        self.expect(re.search(pattern, self.err, re.M), f'stderr does not match {pattern!r}')


def dedent(text):
    lines = text.split('\n')
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return ''
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    return '\n'.join(l[indent:] for l in lines) + '\n'


def increasing(values):
    return all(a < b for a, b in zip(values, values[1:]))


CHECKS = {}


def check(name, *args, status=0, kill_after=None):
    """Registers f(run) as the check NAME: run the sample with args ({dir} in
    an argument is the book's directory); it must
    exit with status, or, with kill_after, still be running after that many
    seconds (it is then stopped and its output checked)."""
    def register(f):
        CHECKS[name] = (list(args), status, kill_after, f)
        return f
    return register


def main():
    book, name = sys.argv[1].split('/', 1)
    exe = sys.argv[2]
    spec = importlib.util.spec_from_file_location(book + '_checks', os.path.join(HERE, book, 'checks.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args, status, kill_after, f = CHECKS[name]

    start = time.monotonic()
    args = [a.replace('{dir}', os.path.join(HERE, book)) for a in args]
    p = subprocess.Popen([exe] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, encoding='utf-8', errors='replace')
    try:
        out, err = p.communicate(timeout=kill_after)
        code = p.returncode
        if kill_after is not None:
            print(f'FAIL: ended with status {code} within {kill_after} s; it should run on')
            return 1
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        code = status
    seconds = time.monotonic() - start
    sys.stdout.write(out)
    sys.stderr.write(err)
    if code != status:
        print(f'FAIL: exit status {code}, expected {status}')
        return 1
    try:
        f(Run(book, out, err, code, seconds))
    except Failed as e:
        print('FAIL:', e)
        return 1
    return 0


if __name__ == '__main__':
    sys.modules['check'] = sys.modules[__name__]
    sys.exit(main())
