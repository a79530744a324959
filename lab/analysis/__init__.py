"""What figures mean: statistics and intervals, each request's latency in parts, and the queueing model."""
