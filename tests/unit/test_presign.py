"""Our SigV4 presigned GETs are botocore's, signature for signature, at the same instant."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.config import Config
from botocore.session import get_session

from store.presign import Presigner

ENDPOINTS = ["http://127.0.0.1:8333", "https://s3.example.com", "https://minio.example.com:9000/storage"]
KEYS = ["files/t/f/original", "exports/t/Q3 report (final).xlsx", "files/t/f/variants/small_256", "a/ü/~x+y=z"]


def _botocore_url(endpoint: str, key: str, params: dict[str, str]) -> str:
    client = get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region_name="eu-west-3",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    return client.generate_presigned_url(
        "get_object", Params={"Bucket": "scopix-uploads", "Key": key, **params}, ExpiresIn=900
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("key", KEYS)
def test_the_url_is_botocores(endpoint: str, key: str) -> None:
    disposition = "attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
    theirs = _botocore_url(
        endpoint, key, {"ResponseContentType": "application/pdf", "ResponseContentDisposition": disposition}
    )
    stamp = parse_qs(urlsplit(theirs).query)["X-Amz-Date"][0]
    now = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    presigner = Presigner(endpoint, "eu-west-3", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    params = {"response-content-type": "application/pdf", "response-content-disposition": disposition}
    ours = presigner.get_url("scopix-uploads", key, 900, params, now)
    assert urlsplit(ours)[:3] == urlsplit(theirs)[:3]
    assert parse_qs(urlsplit(ours).query) == parse_qs(urlsplit(theirs).query)
