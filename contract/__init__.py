"""The contract between the lab and the servers it measures: the knobs a server reads, the table of
modes and how each starts, and the endpoint (its parameters, SQL, timing headers and the server's
report of itself). Stdlib only. The services, the Locust user, the images and the orchestrator
(`lab/`) all import it; the images carry it and their service, never the orchestrator."""
