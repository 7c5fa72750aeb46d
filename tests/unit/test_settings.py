from pathlib import Path

import pytest

from store.settings import load_settings


def test_settings_come_from_prefixed_environment_variables():
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://db",
            "SCOPIX_DATA_DIR": "/srv/x",
            "SCOPIX_MAX_UPLOAD_BYTES": "1024",
            "OTHER": "1",
        }
    )
    assert settings.database_url == "postgresql://db"
    assert settings.data_dir == Path("/srv/x")
    assert settings.max_upload_bytes == 1024
    assert load_settings({}).s3_bucket == "scopix-uploads"


def test_bad_values_are_refused_clearly():
    with pytest.raises(ValueError, match="max_upload_bytes"):
        load_settings({"SCOPIX_MAX_UPLOAD_BYTES": "lots"})
