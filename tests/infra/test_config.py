"""Settings: TOML + environment overrides, typed, secrets never shown."""

from __future__ import annotations

import logging

import pytest

from wxbackend.config import ConfigError, load_settings, require_wechat


def write(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_documents_every_key() -> None:
    import dataclasses
    import re
    from pathlib import Path

    from wxbackend.config import Settings
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    text = example.read_text(encoding="utf-8")
    settings = load_settings(example, environ={})
    for section in dataclasses.fields(Settings):
        if section.name == "source":
            continue
        for key in dataclasses.fields(getattr(settings, section.name)):
            if key.name == "menu":
                assert settings.wechat.menu["button"], "the example defines a menu"
                continue
            assert re.search(rf"^{key.name} = ", text, re.M), f"[{section.name}] {key.name}"


def test_environment_overrides_the_file(tmp_path) -> None:
    path = write(tmp_path, '[server]\nport = 8001\n[wechat]\nappid = "wxfile"\n')
    settings = load_settings(path, environ={
        "WXBACKEND__SERVER__PORT": "9000", "WXBACKEND__WECHAT__SECRET": "s3cr3t-value",
        "WXBACKEND__OUTBOX__BACKOFF_BASE": "3.5", "WXBACKEND__SERVER__RUN_WORKER": "false",
        "OTHER": "ignored"})
    assert settings.server.port == 9000
    assert settings.wechat.appid == "wxfile"
    assert settings.wechat.secret.reveal() == "s3cr3t-value"
    assert settings.outbox.backoff_base == 3.5
    assert settings.server.run_worker is False


def test_a_retired_setting_still_loads_with_a_warning(tmp_path, caplog) -> None:
    path = write(tmp_path, '[wechat]\nappid = "wxfile"\ndedup_ttl = 600\n')
    with caplog.at_level(logging.WARNING, logger="wxbackend.config"):
        settings = load_settings(path, environ={})
    assert settings.wechat.appid == "wxfile"
    assert "dedup_ttl is no longer used" in caplog.text


def test_secrets_never_show_in_repr_or_logs(tmp_path, caplog) -> None:
    settings = load_settings(None, environ={
        "WXBACKEND__WECHAT__SECRET": "app-secret-value",
        "WXBACKEND__DATABASE__DSN": "postgresql://wx:db-password@db/wx"})
    logging.getLogger("t").info("settings: %r", settings)
    assert "app-secret-value" not in repr(settings)
    assert "db-password" not in caplog.text and "app-secret-value" not in caplog.text


@pytest.mark.parametrize(("env", "message"), [
    ({"WXBACKEND__SERVER__PORT": "eighty"}, "integer"),
    ({"WXBACKEND__NOPE__X": "1"}, "unknown section"),
    ({"WXBACKEND__SERVER__NOPE": "1"}, "unknown setting"),
    ({"WXBACKEND__WECHAT__MESSAGE_MODE": "secret"}, "message_mode"),
    ({"WXBACKEND__WECHAT__ENCODING_AES_KEY": "short"}, "43"),
    ({"WXBACKEND__SERVER": "1"}, "SECTION__KEY"),
    ({"WXBACKEND__CHANNELS__MEDIA_STORE": "ftp"}, "media_store"),
    ({"WXBACKEND__CHANNELS__MEDIA_STORE": "s3"}, "s3_endpoint"),
    ({"WXBACKEND__CHANNELS__IMAGE_WORKERS": "0"}, "image_workers"),
    ({"WXBACKEND__CHANNELS__MASS_SENDS_PER_MONTH": "40"}, "mass_sends_per_month"),
])
def test_bad_settings_stop_with_a_clear_message(env, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, environ=env)


def test_missing_wechat_secrets_are_named(tmp_path) -> None:
    settings = load_settings(None, environ={"WXBACKEND__WECHAT__APPID": "wx1"})
    with pytest.raises(ConfigError) as info:
        require_wechat(settings)
    text = str(info.value)
    for key in ("secret", "token", "original_id", "encoding_aes_key"):
        assert f"[wechat] {key}" in text
    assert "[wechat] appid" not in text


def test_missing_or_broken_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "none.toml", environ={})
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(write(tmp_path, "[server\n"), environ={})


def test_trusted_proxies_from_the_file_or_the_environment(tmp_path) -> None:
    path = write(tmp_path, '[server]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8"]\n')
    assert load_settings(path, environ={}).server.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    env = {"WXBACKEND__SERVER__TRUSTED_PROXIES": "127.0.0.1, ::1"}
    assert load_settings(None, environ=env).server.trusted_proxies == ("127.0.0.1", "::1")
    assert load_settings(None, environ={}).server.trusted_proxies == ()
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_settings(None, environ={"WXBACKEND__SERVER__TRUSTED_PROXIES": "nginx.local"})


def test_xheaders_is_retired_and_trusts_no_one(tmp_path, caplog) -> None:
    path = write(tmp_path, "[server]\nxheaders = true\n")
    with caplog.at_level(logging.WARNING, logger="wxbackend.config"):
        settings = load_settings(path, environ={})
    assert "xheaders is no longer used" in caplog.text and "trusted_proxies" in caplog.text
    assert settings.server.trusted_proxies == ()
