import os
import subprocess
import sys
from pathlib import Path

import pytest

from store.settings import MIB, Settings, SettingsError, environment, get_settings, load_settings


def test_settings_are_nested_by_concern_and_named_section_then_field():
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://db",
            "SCOPIX_DATA_DIR": "/srv/x",
            "SCOPIX_DATABASE__POOL_MAX_SIZE": "4",
            "SCOPIX_STORAGE__BUCKET": "files",
            "SCOPIX_STORAGE__MAX_UPLOAD_BYTES": "1024",
            "SCOPIX_RETENTION__SOFT_DELETE_DAYS": "7",
            "SCOPIX_ENGINE__SERVE": "false",
            "SCOPIX_ENGINE__RAY_ADDRESS": "ray://head:10001",
            "SCOPIX_MODELS__DESCRIBE__MODEL": "/models/blip",
            "SCOPIX_CHUNKING__MAX_TOKENS": "128",
            "SCOPIX_TRACING__ENDPOINT": "http://collector:4318",
            "SCOPIX_LIMITS__STEP_SECONDS": "30",
            "SCOPIX_LIMITS__DOCX_XML_ELEMENTS": "1000",
            "OTHER": "1",
        }
    )
    assert settings.database.url == "postgresql://db" and settings.database.pool_max_size == 4
    assert settings.data_dir == Path("/srv/x")
    assert settings.storage.bucket == "files" and settings.storage.max_upload_bytes == 1024
    assert settings.retention.soft_delete_days == 7
    assert settings.engine.serve is False and settings.engine.ray_address == "ray://head:10001"
    assert settings.models.describe.model == "/models/blip" and settings.models.embed_text.model is None
    assert settings.chunking.max_tokens == 128
    assert settings.tracing.endpoint == "http://collector:4318"
    assert settings.limits.step_seconds == 30 and settings.limits.docx_xml_elements == 1000


def test_defaults_are_those_of_the_flat_settings():
    settings = load_settings({})
    assert settings == Settings()
    assert settings.storage.bucket == "scopix-uploads" and settings.storage.max_upload_bytes == 100 * MIB
    assert settings.engine.serve is True and settings.engine.lease_seconds == 60.0
    assert settings.chunking.max_tokens == 256 and settings.chunking.overlap_tokens == 32
    for task in ("embed_text", "ocr", "embed_image", "describe"):
        model = settings.models.task(task)
        assert model is not None and model.model is None
        assert (model.num_cpus, model.num_gpus, model.threads, model.max_batches) == (0.1, 0.0, None, None)
    assert settings.models.task("analyze_frames") is None  # a task with no settings of its own


def test_each_task_takes_the_shared_actor_resources_it_does_not_set():
    settings = load_settings(
        {
            "SCOPIX_MODELS__ACTORS__NUM_CPUS": "0.5",
            "SCOPIX_MODELS__ACTORS__THREADS": "2",
            "SCOPIX_MODELS__DESCRIBE__NUM_GPUS": "1",
            "SCOPIX_MODELS__DESCRIBE__NUM_CPUS": "2",
        }
    )
    describe, embed_text = settings.models.describe, settings.models.embed_text
    assert (describe.num_cpus, describe.num_gpus, describe.threads) == (2.0, 1.0, 2)
    assert (embed_text.num_cpus, embed_text.num_gpus, embed_text.threads) == (0.5, 0.0, 2)
    # A change of the shared resources in code reaches every task not changed with it, as in the environment.
    changed = settings.replace(models__actors__num_cpus=0.0, models__ocr__num_cpus=1.0)
    assert changed.models.embed_text.num_cpus == 0.0 and changed.models.describe.num_cpus == 0.0
    assert changed.models.ocr.num_cpus == 1.0 and changed.models.describe.num_gpus == 1.0


def test_replicas_memory_and_custom_resources_per_task():
    settings = load_settings(
        {
            "SCOPIX_MODELS__EMBED_IMAGE__MIN_REPLICAS": "2",
            "SCOPIX_MODELS__EMBED_IMAGE__MAX_REPLICAS": "4",
            "SCOPIX_MODELS__EMBED_IMAGE__MEMORY_MIB": "1536",
            "SCOPIX_MODELS__EMBED_IMAGE__RESOURCES": '{"worker": 0.1}',
            "SCOPIX_MODELS__ACTORS__IDLE_SECONDS": "5",
        }
    )
    image, ocr = settings.models.embed_image, settings.models.ocr
    assert (image.min_replicas, image.max_replicas, image.memory_mib, image.resources) == (2, 4, 1536, {"worker": 0.1})
    assert (ocr.min_replicas, ocr.max_replicas, ocr.memory_mib, ocr.resources) == (1, 1, None, {})
    assert image.idle_seconds == ocr.idle_seconds == 5.0
    assert load_settings(environment(settings)) == settings  # a child process gets the same, the JSON map included
    with pytest.raises(SettingsError, match="SCOPIX_MODELS__OCR__RESOURCES: not a JSON object"):
        load_settings({"SCOPIX_MODELS__OCR__RESOURCES": "worker=1"})
    with pytest.raises(SettingsError, match="SCOPIX_MODELS__OCR: max_replicas \\(1\\) is below min_replicas \\(3\\)"):
        load_settings({"SCOPIX_MODELS__OCR__MIN_REPLICAS": "3"})


def test_replace_takes_the_environment_names_and_refuses_others():
    settings = Settings().replace(storage__bucket="b", data_dir=Path("/d"), models__describe__model="m")
    assert settings.storage.bucket == "b" and settings.data_dir == Path("/d") and settings.models.describe.model == "m"
    assert settings.replace(data_dir="/e").data_dir == Path("/e")
    with pytest.raises(TypeError, match="storage__nope"):
        Settings().replace(storage__nope=1)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("SCOPIX_S3_BUCKET", "SCOPIX_STORAGE__BUCKET"),
        ("SCOPIX_S3_ENDPOINT_URL", "SCOPIX_STORAGE__ENDPOINT_URL"),
        ("SCOPIX_SERVE_ENGINE", "SCOPIX_ENGINE__SERVE"),
        ("SCOPIX_ENGINE_MAX_IN_FLIGHT", "SCOPIX_ENGINE__MAX_IN_FLIGHT"),
        ("SCOPIX_EMBED_TEXT_MODEL", "SCOPIX_MODELS__EMBED_TEXT__MODEL"),
        ("SCOPIX_MODEL_ACTOR_NUM_CPUS", "SCOPIX_MODELS__ACTORS__NUM_CPUS"),
        ("SCOPIX_CHUNK_MAX_TOKENS", "SCOPIX_CHUNKING__MAX_TOKENS"),
        ("SCOPIX_TRACES_ENDPOINT", "SCOPIX_TRACING__ENDPOINT"),
        ("SCOPIX_SOFT_DELETE_DAYS", "SCOPIX_RETENTION__SOFT_DELETE_DAYS"),
    ],
)
def test_an_old_flat_name_is_refused_with_its_new_name(old: str, new: str):
    with pytest.raises(SettingsError, match=f"{old} was renamed {new}"):
        load_settings({old: "1"})
    load_settings({new: "1"})  # the new name is a setting


def test_the_command_refuses_to_start_on_an_old_name(tmp_path: Path):
    scopix = Path(sys.executable).parent / "scopix"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SCOPIX_")}, "SCOPIX_S3_BUCKET": "files"}
    done = subprocess.run(
        [scopix, "serve", "--data-dir", str(tmp_path / "data")], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "error: SCOPIX_S3_BUCKET was renamed SCOPIX_STORAGE__BUCKET"
    assert not (tmp_path / "data").exists()  # nothing was started


def test_every_unknown_scopix_name_is_refused_at_once():
    with pytest.raises(SettingsError) as refused:
        load_settings({"SCOPIX_S3_BUCKET": "b", "SCOPIX_STORAGE_BUCKET": "b", "SCOPIX_STORAGE__BUCKET": "b"})
    message = str(refused.value)
    assert "SCOPIX_S3_BUCKET was renamed SCOPIX_STORAGE__BUCKET" in message
    assert "SCOPIX_STORAGE_BUCKET is not a setting" in message  # a typo is not silently ignored either


def test_bad_values_are_refused_naming_the_variable():
    with pytest.raises(SettingsError, match="SCOPIX_STORAGE__MAX_UPLOAD_BYTES"):
        load_settings({"SCOPIX_STORAGE__MAX_UPLOAD_BYTES": "lots"})
    with pytest.raises(SettingsError, match="SCOPIX_MODELS__DESCRIBE__NUM_GPUS"):
        load_settings({"SCOPIX_MODELS__DESCRIBE__NUM_GPUS": "many"})


def test_a_child_process_environment_gives_the_same_settings():
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://db",
            "SCOPIX_ENGINE__SERVE": "false",
            "SCOPIX_MODELS__ACTORS__NUM_CPUS": "0.5",
            "SCOPIX_MODELS__OCR__NUM_CPUS": "0.1",  # the default value, set on purpose: it must survive
        }
    )
    env = environment(settings)
    assert env["DATABASE_URL"] == "postgresql://db" and env["SCOPIX_ENGINE__SERVE"] == "false"
    assert load_settings(env) == settings


def test_loading_never_writes_the_environment():
    before = dict(os.environ)
    given = {"DATABASE_URL": "postgresql://db", "SCOPIX_MODELS__ACTORS__NUM_CPUS": "0.5"}
    settings = load_settings(given)
    environment(settings.replace(storage__endpoint_url="http://s3"))
    get_settings.cache_clear()
    try:
        get_settings()
    finally:
        get_settings.cache_clear()
    assert dict(os.environ) == before
    assert given == {"DATABASE_URL": "postgresql://db", "SCOPIX_MODELS__ACTORS__NUM_CPUS": "0.5"}
