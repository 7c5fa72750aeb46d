"""What exporting traces costs: images per minute through two real `scopix serve`s side by side, one without
traces and one exporting every span (requests, jobs, Ray tasks, model calls) over OTLP/HTTP to a collector, fed
the same photos in rounds, each going first in every other round (a busy machine slows both alike); the median of
the rounds' ratios.

    .venv/bin/python benchmarks/tracing.py [--images 24] [--rounds 6]

The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.ingest import WORKERS, sample_photos  # noqa: E402
from benchmarks.service import running_service, uploaded_and_processed  # noqa: E402
from testkit.otlp_collector import collector  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    photos = sample_photos(args.images, 2.0)
    settings = {"engine__ray_num_cpus": str(WORKERS), "models__actors__threads": str(WORKERS)}
    with (
        collector() as (received, endpoint),
        running_service(**settings) as plain,
        running_service(**settings, tracing__endpoint=endpoint, tracing__export_delay_ms="500") as traced,
    ):
        rates: dict[str, list[float]] = {"plain": [], "traced": []}
        for service in (plain, traced):  # warm Ray and the model actors
            asyncio.run(uploaded_and_processed(service.base, service.key, sample_photos(WORKERS * 2, 0.3)))
        order = [("plain", plain), ("traced", traced)]
        for _ in range(args.rounds):
            order.reverse()  # neither always goes first
            for name, service in order:
                seconds = asyncio.run(uploaded_and_processed(service.base, service.key, photos))
                rates[name].append(args.images / seconds * 60)
        spans = len(received.spans)
    ratios = [traced / plain for plain, traced in zip(rates["plain"], rates["traced"], strict=True)]
    ratio = statistics.median(ratios)
    print(
        f"without traces {statistics.median(rates['plain']):.0f} images/min, with traces "
        f"{statistics.median(rates['traced']):.0f} images/min ({spans} spans received); median ratio {ratio:.3f}"
    )
    result = {
        "images": args.images,
        "rounds": args.rounds,
        "plain_images_per_min": [round(rate, 1) for rate in rates["plain"]],
        "traced_images_per_min": [round(rate, 1) for rate in rates["traced"]],
        "ratios": [round(value, 3) for value in ratios],
        "ratio": round(ratio, 3),
        "spans_received": spans,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
