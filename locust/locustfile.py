"""The lab's Locust user: converts random seeded pairs with no think time and checks each answer.

FastHttpUser, because on two cores it drives about four times the requests per second of
HttpUser, and the load generator shares those cores with the server and PostgreSQL.
"""

import random
import sys
from pathlib import Path

from locust import FastHttpUser, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.endpoint import seeded_rates

RATES = seeded_rates()
PAIRS = list(RATES)


class Converter(FastHttpUser):
    # No think time: a closed loop, so throughput = users / response time (LAB.md).
    # Requests can take IO_SECONDS or more; the default 60 s would cut long cpu runs.
    network_timeout = 300.0
    connection_timeout = 10.0

    @task
    def convert(self) -> None:
        source, target = random.choice(PAIRS)
        with self.client.get(
            f"/currency/convert?from={source}&to={target}", name="/currency/convert", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200] if response.text else ''}")
                return
            try:
                rate = response.json()["rate"]
            except (ValueError, KeyError, TypeError):
                response.failure("answer is not the endpoint's JSON")
                return
            if abs(rate - RATES[(source, target)]) > 1e-9:
                response.failure(f"wrong rate {rate} for {source}->{target}")
