"""Where the lab runs: processes, PostgreSQL, CPU limits, images and virtual environments, the backends
that start a stack (native, compose, remote), the stack file, the machine under it, and its Kubernetes manifests."""
