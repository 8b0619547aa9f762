"""Every v6ray exception survives pickling (Ray ships them between processes)."""

from __future__ import annotations

import inspect
import pickle

import pytest
from ray import cloudpickle  # the pickler Ray ships exceptions with

from v6ray import errors

SAMPLES = {
    errors.V6RayError: lambda: errors.V6RayError("something broke"),
    errors.InvalidField: lambda: errors.InvalidField("V6RAY_TIME_SCALE", "is not a number"),
    errors.InvalidRequest: lambda: errors.InvalidRequest("items[3].symbol", "is empty"),
    errors.UnknownTable: lambda: errors.UnknownTable("nope", ("market_bars", "positions")),
    errors.IncompleteRequestType: lambda: errors.IncompleteRequestType("quotes", "no SPEC"),
    errors.NotRunning: lambda: errors.NotRunning("no RequestQueue actor"),
    errors.RequestTimeout: lambda: errors.RequestTimeout("abc", 2.5),
    errors.UnknownRequest: lambda: errors.UnknownRequest("abc"),
    errors.IBRequestError: lambda: errors.IBRequestError(162, "pacing violation",
                                                         retryable=True),
    errors.GatewayUnavailable: lambda: errors.GatewayUnavailable("circuit open"),
    errors.StorageError: lambda: errors.StorageError("ib_requests", "disk full"),
    errors.NoTables: lambda: errors.NoTables(
        "/data/typo", ("/data/typo", "/data/typo/sim"), ("ib_requests", "market_bars")),
    errors.TableLocked: lambda: errors.TableLocked("/data/ib_requests", "pid 7 on h", 30.0),
    errors.SchemaMismatch: lambda: errors.SchemaMismatch("ib_requests", "seq: int32 != long"),
    errors.StorageConfigError: lambda: errors.StorageConfigError(
        "V6RAY_STORAGE_OPTIONS", "is not a JSON object"
    ),
    errors.SettingsError: lambda: errors.SettingsError("ib_port must be within 1..65535"),
    errors.LogSettingsError: lambda: errors.LogSettingsError("log level must be one of ..."),
    errors.JobConfigError: lambda: errors.JobConfigError("bars", "interval_seconds", "< 1"),
    errors.SplitDataRoot: lambda: errors.SplitDataRoot("/data is local to each of 2 nodes"),
    errors.ClusterStartFailed: lambda: errors.ClusterStartFailed("`ray start` exited (1)"),
    errors.UsageError: lambda: errors.UsageError("submit: --param takes KEY=VALUE"),
    errors.CommandFailed: lambda: errors.CommandFailed("2 request(s) failed", 3),
}


def all_error_classes() -> list[type]:
    return [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__ == errors.__name__]


def test_every_error_class_has_a_sample():
    assert set(all_error_classes()) <= set(SAMPLES), "add the new error class to SAMPLES"


@pytest.mark.parametrize("cls", sorted(SAMPLES, key=lambda c: c.__name__))
@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_round_trip_keeps_type_fields_and_message(cls, dumps):
    original = SAMPLES[cls]()
    copy = pickle.loads(dumps(original))
    assert type(copy) is cls
    assert str(copy) == str(original)
    assert vars(copy) == vars(original)
    assert isinstance(copy, errors.V6RayError)


def test_users_can_catch_them_as_builtin_kinds():
    assert isinstance(errors.InvalidRequest("f", "r"), ValueError)
    assert isinstance(errors.RequestTimeout("id", 1), TimeoutError)
    assert isinstance(errors.UnknownRequest("id"), KeyError)
    missing = errors.NoTables("/data/typo", ("/data/typo",))
    assert isinstance(missing, FileNotFoundError) and missing.filename == "/data/typo"
    assert isinstance(errors.NotRunning(), RuntimeError)
    assert isinstance(errors.LogSettingsError("bad level"), errors.SettingsError)
    assert isinstance(errors.SettingsError("bad port"), ValueError)
    assert isinstance(errors.JobConfigError("job", "field", "why"), ValueError)
    assert isinstance(errors.ClusterStartFailed("exited"), RuntimeError)
    assert "field" in str(errors.InvalidRequest("field", "why"))
