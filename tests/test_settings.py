"""Settings: TOML plus environment, validated at start with messages naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskd.settings import SettingsError, load_settings, parse_settings
from tests.helpers import ROOT, run_taskd


def test_the_shipped_config_is_the_documented_default() -> None:
    settings = load_settings(ROOT / "config" / "taskd.toml", env={})
    assert settings.server.port == 8080
    assert settings.redis.url == ""
    assert settings.storage.backend == "local"
    demo = settings.accounts["demo"]
    assert demo.secret.get_secret_value() == "demo-secret"
    assert [k.get_secret_value() for k in demo.api_keys] == ["demo-key"]
    assert (demo.max_pending, demo.max_tasks_per_request, demo.rate_per_minute) == (1000, 100, 6000)
    assert settings.machines == {}


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text('[server]\nport = 1\n[redis]\nurl = "redis://file"\n')
    env = {"TASKD_PORT": "9999", "TASKD_HOST": "0.0.0.0", "TASKD_REDIS_URL": "redis://env:1"}
    settings = load_settings(config, env=env)
    assert (settings.server.port, settings.server.host) == (9999, "0.0.0.0")
    assert settings.redis.url == "redis://env:1"
    assert load_settings(None, env={"TASKD_CONFIG": str(config)}).server.port == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 1\n", "server.prot: unknown key"),
        ("[server]\nport = 'eighty'\n", "server.port: "),
        ("[servr]\n", "servr: unknown key"),
        ("[accounts.a]\napi_keys = []\n", "accounts.a.secret: required key is missing"),
        ("[accounts.a]\nsecret = 's'\nreferrers = ['ftp://x']\n", "accounts.a.referrers"),
        ("[log]\nlevel = 'loud'\n", "log.level: "),
        ("[storage]\nbackend = 'floppy'\n", "storage.backend: "),
        ("[storage]\nbackend = 's3'\n", "storage: the s3 backend needs a bucket"),
        ("[fetch]\nmax_pixels = 0\n", "fetch.max_pixels: "),
        ("[server\n", "invalid TOML"),
        ("[redis]\nsentinels = ['h:26379']\n", "sentinels need sentinel_master"),
        ("[redis]\nsentinels = ['h']\nsentinel_master = 'm'\n", "redis.sentinels: "),
    ],
)
def test_bad_settings_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(SettingsError) as error:
        load_settings(config, env={})
    assert str(error.value).startswith(f"{config}: ")
    assert message in str(error.value)


def test_bad_env_value_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text("")
    with pytest.raises(SettingsError, match=r"server\.port"):
        load_settings(config, env={"TASKD_PORT": "http"})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such file"):
        load_settings(tmp_path / "nope.toml", env={})


@pytest.mark.parametrize("command", ["serve", "worker", "run"])
@pytest.mark.parametrize("config_after_command", [False, True])
def test_commands_exit_non_zero_on_bad_settings(
    tmp_path: Path, command: str, config_after_command: bool
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[worker]\nmax_jobs = 0\n")
    options = ["--config", str(config)]
    argv = [command, *options] if config_after_command else [*options, command]
    done = run_taskd(*argv)
    assert done.returncode == 2
    assert f"{config}: worker.max_jobs" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_without_redis_url_says_so(tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text("")
    done = run_taskd("--config", str(config), "serve")
    assert done.returncode == 2
    assert "redis.url is empty" in done.stderr


def test_a_machine_with_a_missing_key_or_known_hosts_stops_the_start(tmp_path: Path) -> None:
    hosts = tmp_path / "known_hosts"
    hosts.write_text("")
    machine = {"host": "login.example.org", "known_hosts": str(hosts)}
    config = tmp_path / "taskd.toml"
    config.write_text(
        f'[machines.cluster]\nhost = "login.example.org"\nclient_keys = ["{tmp_path}/no_key"]\n'
        f'known_hosts = "{tmp_path}/no_hosts"\n'
    )
    result = run_taskd("--config", str(config), "serve")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line == (
        f"taskd: {config}: machines.cluster.client_keys: client key file {tmp_path}/no_key"
        f" not found; machines.cluster.known_hosts: known_hosts file {tmp_path}/no_hosts not found"
    )
    # `~` is expanded; a machine whose files exist is accepted.
    settings = parse_settings({"machines": {"cluster": machine}})
    assert settings.machines["cluster"].known_hosts == str(hosts)
