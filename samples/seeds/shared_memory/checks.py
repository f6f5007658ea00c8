# Checks of shared_memory.cpp ("Go Concurrency Part 1: Shared memory").
from check import check


def one_or_two(run):
    run.only('1|2')
    run.count('.*', 1)


for name in ('racy', 'mutex', 'wait_group'):
    check(name, name)(one_or_two)
