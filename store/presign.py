"""Presigned S3 GET URLs (AWS Signature Version 4, query-string form), computed here rather than by botocore.

botocore builds a request object, runs its event hooks and resolves the endpoint for every URL: about a
millisecond each, and a listing of 20 images presigns 60 of them (their variants). The signature itself is a few
HMACs, and its signing key changes once a day, so it is kept. Path-style URLs on a configured endpoint only (as
the clients use: `store.blob_store`); without an endpoint the store leaves presigning to botocore.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"


def _encoded(value: str) -> str:
    """URI-encoding as SigV4 wants it: everything but unreserved characters."""
    return quote(value, safe="-_.~")


@lru_cache(maxsize=8)
def _signing_key(secret_key: str, day: str, region: str) -> bytes:
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class Presigner:
    """Signs GETs of one endpoint's objects with one key pair."""

    def __init__(self, endpoint_url: str, region: str, access_key_id: str, secret_access_key: str) -> None:
        parts = urlsplit(endpoint_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._path_prefix = parts.path.rstrip("/")
        self._host = parts.netloc
        self._region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key

    def get_url(
        self, bucket: str, key: str, expires_in: int, params: Mapping[str, str], now: datetime | None = None
    ) -> str:
        """A URL that GETs `key` for `expires_in` seconds from `now`; `params` are signed query parameters (such
        as `response-content-type`)."""
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        stamp, day = moment.strftime("%Y%m%dT%H%M%SZ"), moment.strftime("%Y%m%d")
        scope = f"{day}/{self._region}/s3/aws4_request"
        query = {
            **params,
            "X-Amz-Algorithm": ALGORITHM,
            "X-Amz-Credential": f"{self._access_key_id}/{scope}",
            "X-Amz-Date": stamp,
            "X-Amz-Expires": str(expires_in),
            "X-Amz-SignedHeaders": "host",
        }
        canonical_query = "&".join(f"{_encoded(name)}={_encoded(value)}" for name, value in sorted(query.items()))
        path = f"{self._path_prefix}/{quote(bucket, safe='~')}/{quote(key, safe='/~')}"
        request = f"GET\n{path}\n{canonical_query}\nhost:{self._host}\n\nhost\nUNSIGNED-PAYLOAD"
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
        key_bytes = _signing_key(self._secret_access_key, day, self._region)
        signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{self._origin}{path}?{canonical_query}&X-Amz-Signature={signature}"
