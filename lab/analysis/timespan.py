"""A span of time as a person reads it, for progress lines and reports alike."""


def duration(seconds: float) -> str:
    """45s, 3m05s."""
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
