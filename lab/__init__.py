"""The concurrency lab: one endpoint, many ways to serve it, measured for real."""
