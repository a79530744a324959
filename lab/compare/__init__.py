"""A verdict between two results folders, and absolute thresholds: `make compare`, and the gate for CI.

- figures: the figures compared, which way is better, and one configuration's reading of each;
- difference: the 95% interval of a difference (Welch's t, or each side's own interval) and the verdict;
- setups: a configuration as its server ran it, pairing two folders' configurations, refusals, machines;
- thresholds: THRESHOLDS read and judged on intervals;
- gate: one exit code from the verdicts and thresholds;
- comparison: a whole comparison, from two folders as read;
- folders: results folders of every kind read into configurations (the files: I/O);
- words, render: the sentences, the Markdown and the JSON;
- command: `make compare` and the thresholds hook of `make bench` and `make capacity` (I/O).
"""
