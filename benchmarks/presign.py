"""Microseconds per presigned GET URL: ours (store/presign.py) against aiobotocore's generate_presigned_url, the
baseline, on the same endpoint, keys and parameters, in one process. A listing of 20 images presigns 60.

    .venv/bin/python benchmarks/presign.py [--urls 2000]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aioboto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from store.blob_store import _client_config  # noqa: E402
from store.presign import Presigner  # noqa: E402

ENDPOINT, REGION, KEY_ID, SECRET = "http://127.0.0.1:8333", "us-east-1", "scopix", "secret-key-for-the-benchmark"


async def measure(urls: int) -> dict[str, float]:
    session = aioboto3.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name=REGION)
    ours = Presigner(ENDPOINT, REGION, KEY_ID, SECRET)
    keys = [f"files/tenant/{n:08d}/variants/small_256" for n in range(urls)]
    async with session.client("s3", endpoint_url=ENDPOINT, config=_client_config()) as client:
        started = time.perf_counter()
        for key in keys:
            params = {"Bucket": "scopix-uploads", "Key": key, "ResponseContentType": "image/jpeg"}
            await client.generate_presigned_url("get_object", Params=params, ExpiresIn=3600)
        botocore_us = (time.perf_counter() - started) / urls * 1e6
    started = time.perf_counter()
    for key in keys:
        ours.get_url("scopix-uploads", key, 3600, {"response-content-type": "image/jpeg"})
    ours_us = (time.perf_counter() - started) / urls * 1e6
    speedup = round(botocore_us / ours_us, 1)
    return {"botocore_us": round(botocore_us, 1), "ours_us": round(ours_us, 1), "speedup": speedup}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--urls", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps({"urls": args.urls, **asyncio.run(measure(args.urls))}))


if __name__ == "__main__":
    main()
