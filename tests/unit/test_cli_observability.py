"""The command line of the monitor and the logs: flags, `v6ray monitor`, one-line errors."""

from __future__ import annotations

import pytest

from v6ray.cli.main import EXIT_ERROR, EXIT_USAGE, main, make_parser


def test_up_monitor_and_log_flags():
    args = make_parser().parse_args(
        ["up", "--simulate", "--monitor-port", "9000", "--log-level", "debug",
         "--log-format", "JSON", "--monitor-host", "0.0.0.0"])
    assert (args.monitor_port, args.log_level, args.log_format) == (9000, "DEBUG", "json")
    assert args.monitor_host == "0.0.0.0" and not args.no_monitor
    defaults = make_parser().parse_args(["up", "--no-monitor"])
    assert defaults.no_monitor and defaults.monitor_port is None
    assert defaults.log_level is None and defaults.monitor_host == "127.0.0.1"
    assert make_parser().parse_args(["monitor", "--open"]).open


@pytest.mark.parametrize("argv", [["up", "--log-level", "LOUD"], ["up", "--log-format", "xml"],
                                  ["up", "--monitor-port", "-1"], ["monitor", "--port", "1"]])
def test_bad_flags_are_usage_errors(capsys, argv):
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("v6ray: error: ")


def test_a_bad_log_level_from_the_environment_names_it(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("V6RAY_LOG_LEVEL", "chatty")
    assert main(["up", "--data-dir", str(tmp_path)]) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "log level must be one of" in err[0]


def test_monitor_without_a_service_says_so(capsys, tmp_path):
    assert main(["monitor", "--data-dir", str(tmp_path)]) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not running" in err[0]
