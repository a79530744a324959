"""The post's published figures, beside the lab's: its quick check (two concurrent requests) per mode
and workload, as totals and as ratios to nothreading."""

from __future__ import annotations

from dataclasses import dataclass

from lab.report.rows import mode_rank
from lab.results.quick_check import QuickCheck, Reply
from lab.results.record import RunRecord

# The post's published quick-check totals (two concurrent requests), seconds.
POST_QUICK_CHECK = {
    ("nothreading", "io"): 10.0472,
    ("threaded", "io"): 5.0370,
    ("async", "io"): 5.0860,
    ("nothreading", "cpu"): 8.8519,
    ("threaded", "cpu"): 9.2367,
    ("gunicorn", "cpu"): 4.9310,
}


@dataclass(frozen=True)
class QuickCheckRow:
    """The quick check of one (mode, workload), beside the post's; totals in seconds."""

    mode: str
    workload: str
    replies: list[Reply]
    total: float
    ratio: float | None  # to nothreading's
    post_total: float | None
    post_ratio: float | None


def quick_checks(records: list[RunRecord], demos: list[QuickCheck]) -> list[QuickCheckRow]:
    """The quick check per (mode, workload): the lab's two-request total beside the post's, as ratios
    to nothreading (absolute times depend on IO_SECONDS and the machine). The latest of each counts."""
    latest: dict[tuple[str, str], QuickCheck] = {}
    for check in [r.quick_check for r in records if r.quick_check] + demos:
        latest[(check.mode, check.workload)] = check
    rows: list[QuickCheckRow] = []
    for (mode, workload), check in sorted(latest.items(), key=lambda item: (item[0][1], mode_rank(item[0][0]))):
        base = latest.get(("nothreading", workload))
        post = POST_QUICK_CHECK.get((mode, workload))
        post_base = POST_QUICK_CHECK.get(("nothreading", workload))
        ratio = check.total_seconds / base.total_seconds if base else None
        rows.append(QuickCheckRow(mode, workload, check.replies, check.total_seconds, ratio, post,
                                  post / post_base if post and post_base else None))  # fmt: skip
    return rows
