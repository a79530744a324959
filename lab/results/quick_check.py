"""The post's quick check as a record keeps it: each reply in the order it completed, then the total."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Reply:
    pair: str
    rate: float | None
    status: int
    seconds: float


@dataclass(frozen=True)
class QuickCheck:
    mode: str
    workload: str
    replies: list[Reply]  # in the order they completed
    total_seconds: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def render(check: QuickCheck) -> str:
    n = len(check.replies)
    lines = [f"Sending {n} concurrent requests... (MODE={check.mode}, WORKLOAD={check.workload})"]
    for i, reply in enumerate(check.replies, 1):
        lines.append(f"[{i}/{n}] {reply.pair} | resp={reply.rate} | status={reply.status} | {reply.seconds:.4f}s")
    lines.append(f"Total time: {check.total_seconds:.4f}s")
    return "\n".join(lines)
