"""The v6ray command line without Ray: parsing, --param values, one-line errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import v6ray
from v6ray.cli.arguments import parse_params
from v6ray.cli.main import EXIT_ERROR, EXIT_USAGE, main, make_parser
from v6ray.errors import UsageError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for var in ("V6RAY_DATA_DIR", "V6RAY_RAY_ADDRESS", "V6RAY_IB_PORT", "V6RAY_TIME_SCALE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # the default ./v6ray-data must never be a real one


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("v6ray: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# --------------------------------------------------------------------------- parser


def test_up_parses_every_flag():
    args = make_parser().parse_args(
        ["up", "--simulate", "--ib-host", "h", "--ib-port", "4001", "--client-id", "3"]
        + ["--data-dir", "d", "--address", "127.0.0.1:6379", "--time-scale", "0.05"]
        + ["--detach", "--schedule", "s.yaml", "--num-cpus", "4"]
    )
    assert (args.command, args.simulate, args.ib_host, args.ib_port) == ("up", True, "h", 4001)
    assert (args.client_id, args.data_dir, args.address) == (3, "d", "127.0.0.1:6379")
    assert (args.time_scale, args.detach, args.schedule, args.num_cpus) == (0.05, True, "s.yaml", 4)


def test_up_defaults_leave_settings_to_the_environment():
    args = make_parser().parse_args(["up"])
    assert not args.simulate and not args.detach
    assert args.ib_host is args.ib_port is args.client_id is args.time_scale is None
    assert args.data_dir is None and args.address is None


def test_down_status_submit_parse():
    parser = make_parser()
    down = parser.parse_args(["down", "--data-dir", "d", "--timeout", "5"])
    assert (down.command, down.data_dir, down.timeout) == ("down", "d", 5.0)
    status = parser.parse_args(["status", "--json", "--address", "a:1"])
    assert status.json and status.address == "a:1"
    submit = parser.parse_args(
        ["submit", "option_chain", "SPY", "--priority", "1", "--param", "dte=45"]
        + ["--param", "rights=C", "--wait", "--timeout", "9"]
    )
    assert (submit.request_type, submit.symbol, submit.priority) == ("option_chain", "SPY", 1)
    assert submit.param == ["dte=45", "rights=C"]
    assert submit.wait and submit.timeout == 9.0


def test_script_and_table_commands_parse():
    parser = make_parser()
    history = parser.parse_args(
        ["load-history", "SPY", "QQQ", "--duration", "1 Y", "--bar-size", "1 day"]
    )
    assert history.symbols == ["SPY", "QQQ"]
    assert (history.duration, history.bar_size) == ("1 Y", "1 day")
    assert parser.parse_args(["load-futures"]).roots == []
    assert parser.parse_args(["load-futures", "ES", "NQ"]).roots == ["ES", "NQ"]
    assert parser.parse_args(["derive-stats", "--data-dir", "d"]).command == "derive-stats"
    show = parser.parse_args(["show", "market_bars", "--limit", "5"])
    assert (show.table, show.limit) == ("market_bars", 5)
    assert parser.parse_args(["compact"]).table is None
    assert parser.parse_args(["compact", "positions"]).table == "positions"
    sim = parser.parse_args(
        ["sim", "--host", "127.0.0.1", "--port", "4002", "--seed", "3"]
        + ["--time-scale", "0.5", "--stats-file", "f"]
    )
    assert (sim.port, sim.seed, sim.time_scale, sim.stats_file) == (4002, 3, 0.5, "f")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["up", "--ib-port", "x"],
        ["up", "--time-scale", "0"],
        ["up", "--client-id", "-1"],
        ["submit", "market_bars"],
        ["submit", "market_bars", "SPY", "--timeout", "-3"],
        ["load-history"],
        ["show"],
        ["show", "market_bars", "--limit", "many"],
        ["status", "--jsn"],
    ],
)
def test_usage_errors_are_one_line_and_exit_2(capsys, argv):
    code, _, err = run_main(capsys, *argv)
    assert code == EXIT_USAGE
    assert_one_line_error(err)


def test_sim_is_handed_to_the_simulator_cli(capsys):
    code, _, err = run_main(capsys, "sim", "--port", "not-a-port")
    assert code == EXIT_USAGE
    assert "--port" in err and "Traceback" not in err


def test_help_exits_zero(capsys):
    code, out, _ = run_main(capsys, "--help")
    assert code == 0
    for command in ("up", "down", "status", "submit", "load-history", "show", "compact", "sim"):
        assert command in out


# --------------------------------------------------------------------------- --param


def test_param_values_are_json_when_they_parse():
    params = parse_params(
        ["dte=45", "use_rth=false", "bar_size=1 hour", "strikes=10", "x=null", "eq=a=b", "f=1.5"]
    )
    assert params == {
        "dte": 45,
        "use_rth": False,
        "bar_size": "1 hour",
        "strikes": 10,
        "x": None,
        "eq": "a=b",
        "f": 1.5,
    }


@pytest.mark.parametrize("item", ["nokey", "=5", " =5"])
def test_param_without_key_is_rejected(item):
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_params([item])


def test_param_given_twice_is_rejected():
    with pytest.raises(UsageError, match="twice"):
        parse_params(["dte=1", "dte=2"])


# --------------------------------------------------------------------------- bad input, no Ray


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["submit", "no_such_type", "SPY"], "request_type"),
        (["submit", "market_bars", "SPY", "--priority", "9"], "priority"),
        (["submit", "market_bars", "SPY", "--param", "bogus=1"], "bogus"),
        (["submit", "option_chain", "SPY", "--param", "dte=soon"], "dte"),
    ],
)
def test_bad_requests_fail_before_any_connection(capsys, argv, fragment):
    code, _, err = run_main(capsys, *argv)
    assert code == EXIT_ERROR
    assert_one_line_error(err, fragment)


def test_bad_param_syntax_is_a_usage_error(capsys):
    code, _, err = run_main(capsys, "submit", "market_bars", "SPY", "--param", "nokey")
    assert code == EXIT_USAGE
    assert_one_line_error(err, "KEY=VALUE")


def test_bad_setting_from_a_flag(capsys):
    code, _, err = run_main(capsys, "up", "--ib-port", "70000")
    assert code == EXIT_ERROR
    assert_one_line_error(err, "ib_port")


def test_bad_setting_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("V6RAY_TIME_SCALE", "fast")
    code, _, err = run_main(capsys, "status")
    assert code == EXIT_ERROR
    assert_one_line_error(err, "V6RAY_TIME_SCALE")


def test_missing_schedule_file(capsys):
    code, _, err = run_main(capsys, "up", "--schedule", "/no/such/jobs.yaml")
    assert code == EXIT_USAGE
    assert_one_line_error(err, "jobs.yaml")


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["status", "--json"],
        ["submit", "market_bars", "SPY"],
        ["load-history", "SPY"],
        ["load-futures"],
        ["derive-stats"],
    ],
)
def test_commands_needing_the_service_say_how_to_start_it(capsys, tmp_path, argv):
    code, _, err = run_main(capsys, *argv, "--data-dir", str(tmp_path / "empty"))
    assert code == EXIT_ERROR
    assert_one_line_error(err, "not running", "v6ray up --simulate")


def test_down_with_nothing_running(capsys, tmp_path):
    code, _, err = run_main(capsys, "down", "--data-dir", str(tmp_path))
    assert code == EXIT_ERROR
    assert_one_line_error(err, "nothing to stop")


def test_show_unknown_table_lists_the_known_ones(capsys, tmp_path):
    code, _, err = run_main(capsys, "show", "no_such_table", "--data-dir", str(tmp_path))
    assert code == EXIT_ERROR
    assert_one_line_error(err, "no_such_table", "market_bars")


def test_show_missing_data_dir(capsys, tmp_path):
    code, _, err = run_main(capsys, "show", "market_bars", "--data-dir", str(tmp_path / "nope"))
    assert code == EXIT_ERROR
    assert_one_line_error(err, "does not exist")


def test_show_empty_table_without_a_service(capsys, tmp_path):
    from v6ray.queue.journal import Journal

    code, _, err = run_main(capsys, "show", "market_bars", "--data-dir", str(tmp_path))
    assert code == EXIT_ERROR  # a folder without v6ray tables is not "no rows"
    assert_one_line_error(err, "no v6ray tables", str(tmp_path))
    Journal(str(tmp_path))  # a data dir the service used: market_bars just not written yet
    code, out, err = run_main(capsys, "show", "market_bars", "--data-dir", str(tmp_path))
    assert code == 0, err
    assert "close" in out  # the header of the (empty) frame
    assert "0 row(s)" in err


def test_show_on_a_simulated_data_dirs_root_reads_its_simulated_tables(capsys, tmp_path):
    from v6ray.queue.journal import Journal

    simulated = tmp_path / "simulated"
    simulated.mkdir()
    journal = Journal(str(simulated))  # `up --simulate` keeps every table under simulated/
    code, out, err = run_main(capsys, "show", "ib_requests", "--data-dir", str(tmp_path))
    journal.close()
    assert code == 0, err
    assert f"(reading simulated data in {simulated})" in err
    assert "shape: (0," in out and "0 row(s) in ib_requests" in err


def test_compact_unknown_table(capsys, tmp_path):
    code, _, err = run_main(capsys, "compact", "nope", "--data-dir", str(tmp_path))
    assert code == EXIT_ERROR
    assert_one_line_error(err, "unknown table")


def test_compact_without_a_service_compacts_the_journal_through_its_writer(capsys, tmp_path):
    from v6ray.queue.journal import Journal
    from v6ray.requests.model import Status, new_request

    data_dir = str(tmp_path)
    code, out, _ = run_main(capsys, "compact", "ib_requests", "--data-dir", data_dir)
    assert code == 0 and "ib_requests: no table yet" in out
    assert not (tmp_path / "ib_requests").exists()  # and it created none
    journal = Journal(data_dir)
    es = new_request("futures_snapshot", "ES")
    for attempts in range(4):
        journal.append([es.with_changes(attempts=attempts)])
    code, out, _ = run_main(capsys, "compact", "ib_requests", "--data-dir", data_dir)
    assert code == 0 and "skipped (another process writes it: held by pid" in out
    journal.close()
    code, out, _ = run_main(capsys, "compact", "ib_requests", "--data-dir", data_dir)
    assert code == 0 and out.startswith("ib_requests: compacted (")
    assert '"rows_before": 4' in out and '"rows_after": 1' in out
    reopened = Journal(data_dir, lock_timeout=0.0)  # the command gave the lock back
    [latest] = reopened.load_latest()
    assert latest.attempts == 3 and latest.status is Status.PENDING
    assert reopened.stats()["files"] == 1


def test_python_dash_m_never_shows_a_traceback(tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(v6ray.__file__)))
    env = {**os.environ, "V6RAY_DATA_DIR": str(tmp_path), "PYTHONPATH": repo}
    env.pop("V6RAY_DEBUG", None)
    for argv, expected in (
        (["show", "nope"], EXIT_ERROR),
        (["status"], EXIT_ERROR),
        (["submit", "x", "SPY"], EXIT_ERROR),
        (["up", "--bad"], EXIT_USAGE),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "v6ray", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == expected, (argv, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith("v6ray: error: "), done.stderr


def test_commands_on_an_object_store_root_leave_without_interpreter_teardown(monkeypatch):
    from v6ray.cli.main import _data_root_is_object_store

    monkeypatch.delenv("V6RAY_DATA_DIR", raising=False)
    assert _data_root_is_object_store(["show", "market_bars", "--data-dir", "s3://b/p"])
    assert _data_root_is_object_store(["show", "--data-dir=gs://b/p"])
    assert not _data_root_is_object_store(["show", "--data-dir", "/tmp/data"])
    assert not _data_root_is_object_store(["show", "--data-dir", "s3:typo"])  # its error path
    monkeypatch.setenv("V6RAY_DATA_DIR", "s3://b/p")
    assert _data_root_is_object_store(["status"])
