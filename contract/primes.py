"""The CPU-bound work of a cpu request: a prime count by trial division in pure Python. The endpoint
counts with it, and an interpreter's speed is timed on the same loop (contract.interpreter). Stdlib only."""

from __future__ import annotations


def count_primes(limit: int) -> int:
    """Trial division in pure Python: the CPU-bound work, deliberately unoptimised."""
    count = 0
    for n in range(2, limit):
        for divisor in range(2, int(n**0.5) + 1):
            if n % divisor == 0:
                break
        else:
            count += 1
    return count
