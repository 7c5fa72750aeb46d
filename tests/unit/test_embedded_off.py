"""With SCOPIX_EMBEDDED=false (as every Kubernetes manifest sets it) a command that lacks the setting of a service it
needs stops before starting anything and names the setting, instead of running on a private Postgres, S3 or Ray."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from store.settings import DATABASE, RAY, STORAGE, SettingsError, load_settings, require_services
from tests.support.scopix_command import scopix_env

SCOPIX = str(Path(sys.executable).parent / "scopix")
EXTERNAL = {"DATABASE_URL": "postgresql://db:5432/scopix", "SCOPIX_STORAGE__ENDPOINT_URL": "http://s3:9000"}


@pytest.mark.parametrize(
    ("command", "given", "missing"),
    [
        ("serve", {}, ["DATABASE_URL", "SCOPIX_STORAGE__ENDPOINT_URL", "SCOPIX_ENGINE__RAY_ADDRESS"]),
        # misspelt: not a SCOPIX_ name, so only the missing DATABASE_URL tells
        (
            "worker",
            {"DATABASE_URI": "postgresql://db", "SCOPIX_ENGINE__RAY_ADDRESS": "ray://head:10001"},
            ["DATABASE_URL", "SCOPIX_STORAGE__ENDPOINT_URL"],
        ),
        ("worker", EXTERNAL, ["SCOPIX_ENGINE__RAY_ADDRESS"]),
        ("migrate", {}, ["DATABASE_URL"]),  # migrations reach the database alone
    ],
)
def test_a_command_without_a_service_setting_fails_fast_naming_it(
    tmp_path: Path, command: str, given: dict[str, str], missing: list[str]
) -> None:
    env = scopix_env(SCOPIX_EMBEDDED="false", **given)
    done = subprocess.run(
        [SCOPIX, command, "--data-dir", str(tmp_path / "data")], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"error: {' and '.join(missing)} must be set: with SCOPIX_EMBEDDED=false nothing embedded is started in its "
        "place"
    )
    assert not (tmp_path / "data").exists()  # nothing was started


def test_embedded_is_the_default_and_configured_services_pass() -> None:
    assert load_settings({}).embedded is True
    require_services(load_settings({}), DATABASE, STORAGE, RAY)  # the embedded ones start in their place
    configured = load_settings(
        {**EXTERNAL, "SCOPIX_EMBEDDED": "false", "SCOPIX_ENGINE__RAY_ADDRESS": "ray://scopix-ray-head-svc:10001"}
    )
    require_services(configured, DATABASE, STORAGE, RAY)
    with pytest.raises(SettingsError, match=r"^SCOPIX_ENGINE__RAY_ADDRESS must be set"):
        require_services(configured.replace(engine__ray_address=""), DATABASE, RAY)


def test_local_services_start_nothing_embedded_when_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever calls it, not only the command: the embedded Postgres and S3 start on the embedded default alone."""
    from store.services import local_services
    from store.settings import get_settings

    monkeypatch.setenv("SCOPIX_EMBEDDED", "false")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db:5432/scopix")
    monkeypatch.delenv("SCOPIX_STORAGE__ENDPOINT_URL", raising=False)
    get_settings.cache_clear()
    try:
        with (
            pytest.raises(SettingsError, match=r"^SCOPIX_STORAGE__ENDPOINT_URL must be set"),
            local_services(tmp_path / "data"),
        ):
            pass
    finally:
        get_settings.cache_clear()
    assert not (tmp_path / "data").exists()
