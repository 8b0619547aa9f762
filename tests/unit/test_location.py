"""DataRoot: parsing a data dir, joining table names, storage options from the environment."""

from __future__ import annotations

import os
import pickle

import pytest

from v6ray.errors import StorageConfigError, V6RayError
from v6ray.storage.location import (
    STORAGE_OPTIONS_VAR,
    DataRoot,
    parse_storage_options,
    redact_options,
)


def test_local_path_is_absolute_and_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = DataRoot.parse("./v6ray-data")
    assert root.is_local
    assert root.uri == str(tmp_path / "v6ray-data")
    assert root.join("market_bars") == str(tmp_path / "v6ray-data" / "market_bars")
    assert root.storage_options(env={"AWS_SECRET_ACCESS_KEY": "x"}) == {}


def test_home_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert DataRoot.parse("~/data").uri == str(tmp_path / "data")


def test_file_uri_is_a_local_path():
    root = DataRoot.parse("file:///srv/v6ray/")
    assert root.is_local and root.uri == "/srv/v6ray"
    assert DataRoot.parse("file://localhost/srv/x").uri == "/srv/x"


@pytest.mark.parametrize(
    ("text", "uri"),
    [
        ("s3://bucket/prefix", "s3://bucket/prefix"),
        ("S3://bucket/prefix/", "s3://bucket/prefix"),
        ("s3://bucket", "s3://bucket"),
        ("gs://bucket/a/b", "gs://bucket/a/b"),
        ("az://container/p", "az://container/p"),
        ("abfss://c@account.dfs.core.windows.net/p", "abfss://c@account.dfs.core.windows.net/p"),
    ],
)
def test_object_store_uris(text, uri):
    root = DataRoot.parse(text)
    assert not root.is_local
    assert root.uri == uri
    assert root.join("ib_requests") == f"{uri}/ib_requests"
    assert root.child("simulated").join("positions") == f"{uri}/simulated/positions"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "must not be empty"),
        ("ftp://host/x", "unsupported scheme 'ftp'"),
        ("memory:///x", "unsupported scheme 'memory'"),
        ("s3:///prefix", "bucket"),
        ("s3:bucket/prefix", "without '//'"),
        ("s3://key:secret@bucket/p", "credentials"),
        ("s3://bucket/p?X-Amz-Signature=abc", "query"),
        ("file://otherhost/x", "file:///absolute/path"),
    ],
)
def test_bad_data_dir_names_the_field(text, says):
    with pytest.raises(StorageConfigError) as caught:
        DataRoot.parse(text)
    message = str(caught.value)
    assert "V6RAY_DATA_DIR" in message and says in message
    assert "secret" not in message.split("credentials")[0]  # the password is not echoed
    assert "abc" not in message


def test_s3_options_come_from_the_environment_with_safe_commits():
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "AWS_ALLOW_HTTP": "true",
        "GOOGLE_SERVICE_ACCOUNT": "not for s3",
        "HOME": "/root",
    }
    options = DataRoot.parse("s3://b/p").storage_options(env=env)
    assert options == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "AWS_ALLOW_HTTP": "true",
        "conditional_put": "etag",
    }


def test_instance_profile_means_no_keys():
    options = DataRoot.parse("s3://b").storage_options(env={"AWS_REGION": "us-east-1"})
    assert options == {"AWS_REGION": "us-east-1", "conditional_put": "etag"}


def test_v6ray_storage_options_json_overrides_and_user_conditional_put_is_kept():
    env = {
        "AWS_REGION": "us-east-1",
        STORAGE_OPTIONS_VAR: '{"AWS_REGION": "eu-central-1", "aws_conditional_put": "dynamo:t",'
        ' "timeout": 30, "AWS_ALLOW_HTTP": true}',
    }
    options = DataRoot.parse("s3://b").storage_options(env=env)
    assert options["AWS_REGION"] == "eu-central-1"
    assert options["aws_conditional_put"] == "dynamo:t"
    assert "conditional_put" not in options
    assert options["timeout"] == "30" and options["AWS_ALLOW_HTTP"] == "true"
    explicit = DataRoot.parse("s3://b").storage_options(env=env, overrides={"timeout": "5"})
    assert explicit["timeout"] == "5"


def test_gcs_takes_google_variables_and_no_s3_defaults():
    env = {"GOOGLE_SERVICE_ACCOUNT": "/k.json", "AWS_REGION": "us-east-1"}
    assert DataRoot.parse("gs://b/p").storage_options(env=env) == {
        "GOOGLE_SERVICE_ACCOUNT": "/k.json"
    }


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"a": ', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"a": {"b": 1}}', "option 'a'"),
    ],
)
def test_bad_storage_options_name_the_variable(text, says):
    with pytest.raises(StorageConfigError) as caught:
        parse_storage_options(text)
    assert STORAGE_OPTIONS_VAR in str(caught.value) and says in str(caught.value)
    with pytest.raises(StorageConfigError):
        DataRoot.parse("s3://b").storage_options(env={STORAGE_OPTIONS_VAR: text})


def test_bad_json_does_not_echo_its_text():
    secret = "TOPSECRETVALUE"
    with pytest.raises(StorageConfigError) as caught:
        parse_storage_options('{"AWS_SECRET_ACCESS_KEY": "' + secret)
    assert secret not in str(caught.value)


def test_redacted_forms_hide_secrets():
    options = {
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "AWS_SESSION_TOKEN": "tok",
        "azure_storage_sas_token": "sas",
        "AWS_REGION": "us-east-1",
    }
    shown = redact_options(options)
    assert shown["AWS_REGION"] == "us-east-1"
    assert not {"s3cr3t", "tok", "sas"} & set(shown.values())
    assert str(DataRoot.parse("s3://b/p")) == DataRoot.parse("s3://b/p").redacted() == "s3://b/p"


def test_error_pickles_and_is_a_v6ray_value_error():
    error = StorageConfigError("V6RAY_STORAGE_OPTIONS", "not valid JSON")
    again = pickle.loads(pickle.dumps(error))
    assert isinstance(again, V6RayError) and isinstance(again, ValueError)
    assert str(again) == str(error)


def test_a_data_root_pickles():
    root = DataRoot.parse(os.sep + "data")
    assert pickle.loads(pickle.dumps(root)) == root


# ------------------------------------------------------------------ where things go


def test_settings_keep_an_object_store_uri_as_it_is():
    from v6ray.service.settings import Settings

    assert Settings(data_dir="s3://bucket/prefix/").data_path == "s3://bucket/prefix"
    assert Settings.from_env({"V6RAY_DATA_DIR": "gs://b/p"}).data_path == "gs://b/p"
    with pytest.raises(StorageConfigError) as caught:
        Settings.from_env({"V6RAY_DATA_DIR": "ftp://b/p"})
    assert "V6RAY_DATA_DIR" in str(caught.value)


def test_cli_reports_a_bad_data_dir_in_one_line(capsys):
    from v6ray.cli.main import main

    assert main(["show", "market_bars", "--data-dir", "s3:/bucket"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "V6RAY_DATA_DIR" in err[0] and "s3://" in err[0]


def test_table_locations_under_each_kind_of_root(tmp_path):
    from v6ray.service.settings import Settings
    from v6ray.service.state import results_dir
    from v6ray.storage.schemas import table_path

    assert table_path("s3://b/p", "market_bars") == "s3://b/p/market_bars"
    assert table_path("rel/dir", "market_bars") == os.path.join("rel/dir", "market_bars")
    assert results_dir(Settings(data_dir="s3://b/p"), simulate=True) == "s3://b/p/simulated"


def test_state_stays_on_this_machine_for_an_object_store_root(tmp_path, monkeypatch):
    from v6ray.scheduler.state import state_path
    from v6ray.service.state import ServiceState
    from v6ray.storage.location import STATE_DIR_VAR, local_state_dir

    assert local_state_dir(str(tmp_path)) == str(tmp_path / "_v6ray")
    monkeypatch.setenv(STATE_DIR_VAR, str(tmp_path / "state"))
    one, other = local_state_dir("s3://b/p"), local_state_dir("s3://b/q")
    assert one != other and one.startswith(str(tmp_path / "state") + os.sep)
    assert ServiceState.path("s3://b/p") == os.path.join(one, "service.json")
    assert state_path("s3://b/p/simulated").startswith(str(tmp_path / "state") + os.sep)


def test_object_store_journal_takes_no_local_lock(tmp_path):
    from v6ray.storage.writer_lock import LocalFileLock, writer_lock

    remote = writer_lock("s3://b/p/ib_requests")
    assert not isinstance(remote, LocalFileLock)
    remote.acquire(0.0)  # nothing to wait for, nothing written
    remote.release()
    assert isinstance(writer_lock(str(tmp_path)), LocalFileLock)
