"""The Ray auth token `v6ray up` creates, and the auth mode a connecting process uses."""

from __future__ import annotations

import logging
import os
import stat
import string

import pytest

from v6ray.service import cluster


@pytest.fixture
def home(monkeypatch, tmp_path):
    """A fresh home folder, no token in the environment, the usual umask (022)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(var, raising=False)
    previous = os.umask(0o022)
    yield tmp_path
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_up_creates_a_token_only_its_owner_can_read(home):
    env: dict[str, str] = {}
    assert cluster._prepare_auth(env) == "token"
    assert env["RAY_AUTH_MODE"] == "token"
    token = home / ".ray" / "auth_token"
    assert mode(token) == 0o600
    assert mode(home / ".ray") == 0o700
    text = token.read_text()
    assert len(text) == 64 and set(text) <= set(string.hexdigits)
    assert os.listdir(home / ".ray") == ["auth_token"]  # no temporary file left behind


def test_an_existing_token_is_kept(home):
    (home / ".ray").mkdir()
    token = home / ".ray" / "auth_token"
    token.write_text("theirs")
    assert cluster._prepare_auth({}) == "token"
    assert token.read_text() == "theirs"
    assert not cluster.create_token_file(token)  # a token written meanwhile wins
    assert token.read_text() == "theirs"
    assert os.listdir(home / ".ray") == ["auth_token"]


def test_disabled_auth_is_respected_and_warned_about_once(home, monkeypatch, caplog):
    monkeypatch.setattr(cluster, "_auth_disabled_warned", False)
    with caplog.at_level(logging.WARNING, logger="v6ray.service.cluster"):
        assert cluster._prepare_auth({"RAY_AUTH_MODE": "disabled"}) == "disabled"
        assert cluster._prepare_auth({"RAY_AUTH_MODE": "disabled"}) == "disabled"
    warnings = [r.getMessage() for r in caplog.records if "authentication" in r.getMessage()]
    assert len(warnings) == 1
    assert "disabled" in warnings[0] and "RAY_AUTH_MODE" in warnings[0]
    assert not (home / ".ray" / "auth_token").exists()


def test_auth_mode_set_after_ray_was_imported_reaches_rays_config(monkeypatch):
    """A notebook that set RAY_AUTH_MODE itself after importing Ray: Ray's cached config
    must be refreshed or the token is never sent (Ray then waits ~20 s and fails)."""
    from ray._raylet import AuthenticationMode, Config, get_authentication_mode

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    Config.initialize("")
    assert get_authentication_mode() != AuthenticationMode.TOKEN
    try:
        os.environ["RAY_AUTH_MODE"] = "token"
        assert get_authentication_mode() != AuthenticationMode.TOKEN  # cached at import
        cluster.apply_auth_mode("token")
        assert get_authentication_mode() == AuthenticationMode.TOKEN
    finally:
        os.environ.pop("RAY_AUTH_MODE", None)
        Config.initialize("")  # leave this process's Ray config as it found it
