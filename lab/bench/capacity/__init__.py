"""`make capacity`: the highest arrival rate a configuration holds at a p95 target, found by a bounded
search of steps.

rates.py holds the rates a search tries and the range its verdicts give; prediction.py what the
queueing and throughput models expect; steps.py runs a search's steps; summary.py works out a
finished search's answer from its records; words.py says them; command.py is `make capacity`.
"""
