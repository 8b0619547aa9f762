"""Log settings, and no account id or secret in full in any log line (pure, no Ray)."""

from __future__ import annotations

import logging

import pytest

from v6ray.errors import LogSettingsError
from v6ray.observability import logs
from v6ray.observability.logs import LogSettings, mask, mask_account


def test_settings_flags_over_environment_over_defaults():
    assert LogSettings.from_env({}) == LogSettings("INFO", "text")
    env = {"V6RAY_LOG_LEVEL": "debug", "V6RAY_LOG_FORMAT": "JSON"}
    assert LogSettings.from_env(env) == LogSettings("DEBUG", "json")
    assert LogSettings.from_env(env, level="warning", format="text") == LogSettings(
        "WARNING", "text")


@pytest.mark.parametrize("env", [{"V6RAY_LOG_LEVEL": "LOUD"}, {"V6RAY_LOG_FORMAT": "xml"}])
def test_bad_settings_name_the_field(env):
    with pytest.raises(LogSettingsError, match="log (level|format)"):
        LogSettings.from_env(env)


def test_ray_logging_config_follows_the_settings():
    config = logs.logging_config(LogSettings("WARNING", "json"))
    assert (config.encoding, config.log_level) == ("JSON", "WARNING")


@pytest.mark.parametrize(("text", "masked"), [
    ("positions of DU1234567 loaded", "positions of DU****567 loaded"),
    ("account U7654321: 3 positions", "account U****321: 3 positions"),
    ("IB error 321: Account F1234567 is not valid", "IB error 321: Account F****567 is not valid"),
    ("SPY QQQ ES 202606 request 12345678", "SPY QQQ ES 202606 request 12345678"),
])
def test_account_ids_are_masked_and_nothing_else(text, masked):
    assert mask_account(text) == masked


def test_secrets_are_hidden_by_value_and_by_key():
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY"
    text = f"storage options: aws_secret_access_key={secret} region=us-east-1"
    assert mask(text, []) == "storage options: aws_secret_access_key=*** region=us-east-1"
    assert secret not in mask(f"opened with {secret}", [secret])
    assert mask('{"token": "abc123def"}', []) == '{"token": "***"}'


def test_installed_masking_covers_every_logger_of_the_process(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value-42")
    monkeypatch.setattr(logs, "_installed", False)
    factory = logging.getLogRecordFactory()
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    logger = logging.getLogger("ib_async.wrapper")  # a library's logger, not v6ray's
    handler = Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logs.install_masking()
        logs.install_masking()  # idempotent
        logger.info("Error 321, reqId 7: account %s; key s3cr3t-value-42", "DU1234567")
    finally:
        logging.setLogRecordFactory(factory)
        logger.removeHandler(handler)
    assert seen == ["Error 321, reqId 7: account DU****567; key ***"]


def test_the_queue_and_gateway_observers_install_the_masking(monkeypatch):
    from v6ray.observability.gateway import GatewayPublisher
    from v6ray.observability.requests import RequestObserver

    factory = logging.getLogRecordFactory()
    try:
        for make in (RequestObserver, lambda: GatewayPublisher(lambda: None)):
            monkeypatch.setattr(logs, "_installed", False)
            logging.setLogRecordFactory(factory)
            make()
            record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1,
                                                       "account %s", ("U1234567",), None)
            assert record.getMessage() == "account U****567"
    finally:
        logging.setLogRecordFactory(factory)


@pytest.mark.parametrize("encoding", ["TEXT", "JSON"])
def test_a_line_batch_writes_the_jobs_layout_in_one_go(encoding, capsys):
    import json

    batch = logs.LineBatch(logging.getLogger("v6ray.test.batch"), "requests.py", 7, encoding)
    batch.write([("request r1 market_bars SPY NEW->PENDING", {"request_id": "r1"}),
                 ("request r2 position_update DU1234567 NEW->PENDING",
                  {"request_id": "r2", "symbol": "DU1234567"})])
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    if encoding == "JSON":
        first, second = (json.loads(line) for line in lines)
        assert first["message"] == "request r1 market_bars SPY NEW->PENDING"
        assert first["request_id"] == "r1" and first["levelname"] == "INFO"
        assert second["symbol"] == "DU****567"
    else:
        assert "\tINFO requests.py:7 -- request r1 market_bars SPY NEW->PENDING" in lines[0]
        assert lines[1].endswith("position_update DU****567 NEW->PENDING")
    assert "DU1234567" not in "\n".join(lines)


def test_without_rays_logging_config_lines_go_through_logging(caplog):
    logger = logging.getLogger("v6ray.test.batch.plain")
    batch = logs.LineBatch(logger, "requests.py", 7)  # not a Ray worker: no job config
    assert batch.encoding is None
    caplog.set_level(logging.INFO, logger=logger.name)
    batch.write([("one", {}), ("two", {})])
    assert [r.getMessage() for r in caplog.records] == ["one", "two"]
