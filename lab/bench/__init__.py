"""Measuring: `make bench` and `make capacity`.

run.py is the experiment loop (each run's life, its record on disk before the next); verification.py
checks the server is the one the run names and does the work; measure.py drives Locust and reads the
CPU of every part (lab/stack/machine_cpu.py) around the measured window; checks.py judges what bounded a run;
calibration.py compares Locust with wrk; capacity/ searches the load held at a latency target.
"""
