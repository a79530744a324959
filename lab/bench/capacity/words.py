"""A capacity search in words, as it prints them: the prediction after its first step, and each
finished search's answer beside the estimate, the prediction and the model."""

from __future__ import annotations

from lab.analysis.crossing import band
from lab.analysis.timespan import duration
from lab.bench.capacity.prediction import CapacityPrediction
from lab.results.record import CapacityFound


def say_prediction(prediction: CapacityPrediction | None, slo_ms: float) -> None:
    if prediction is None:
        print("    no prediction: the first step recorded no server-side times", flush=True)
        return
    print(f"    predicted ({prediction.name}: {queue_in_words(prediction)}): {prediction.capacity_rps:.3g} req/s at "
          f"p95 ≤ {slo_ms:g} ms, saturation {prediction.saturation_rps:.3g} req/s", flush=True)  # fmt: skip


def queue_in_words(prediction: CapacityPrediction) -> str:
    """The predicted queue in words: what serves, and how long each request takes."""
    served, handler = prediction.served, f"{prediction.service_s * 1000:.1f} ms in the handler"
    if served.binds == "CPU":
        return (f"the CPU binds first: {served.queue.servers} server(s) of {served.queue.service_s * 1000:.1f} ms of "
                f"CPU, and {served.outside_s * 1000:.1f} ms beside the queue, of {handler} over {prediction.requests} "
                "requests")  # fmt: skip
    return f"{served.queue.servers} in flight, each {handler} over {prediction.requests} requests"


def found_in_words(f: CapacityFound) -> str:
    """The estimate, the prediction and the model beside a capacity, in words."""
    parts = []
    if f.capacity_estimate_rps:
        within = band(f.capacity_estimate_low_rps, f.capacity_estimate_high_rps)
        parts.append(f"p95 crosses the target near {f.capacity_estimate_rps:.3g} req/s {within} (95%, from every step near it)")
    if f.predicted_rps:
        parts.append(f"predicted {f.predicted_rps:.3g} ({f.predicted_queue}, {f.predicted_service_ms or 0:.1f} ms)")
        if f.capacity_over_predicted:
            what = "the crossing" if f.capacity_estimate_rps else "the range's middle"
            off = f", more than 10% off: {f.cause}" if f.differs_from_prediction else ""
            parts.append(f"{what} is {f.capacity_over_predicted:.2f} of it{off}")
    if f.model_saturation_rps and f.d_cpu_ms and f.d_cpu_ms.estimate is not None:
        parts.append(f"model saturation {f.model_saturation_rps:.3g} req/s (D_cpu {f.d_cpu_ms.estimate:.2f} ms, slope)")
    stopped = f" (stopped: {f.stopped})" if f.stopped else ""
    return "; ".join([*parts, f"{f.steps} steps, {f.runs} runs, {duration(f.seconds)}{stopped}"])
