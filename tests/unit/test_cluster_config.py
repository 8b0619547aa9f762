"""cluster.yaml and cluster-aws.yaml pass Ray's own launcher validation (the schema inside the
installed Ray) and keep v6ray's rules: one gateway node, no secrets, the token shipped
private, data on S3, Ray and v6ray pinned to pyproject's versions."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest
import ray
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
FILES = ("cluster.yaml", "cluster-aws.yaml")
GATEWAY = "v6ray_gateway"


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def launcher_checks(config: dict) -> dict:
    """What `ray up` does with the file before starting anything: fill in the provider's
    defaults, then validate against ray/autoscaler/ray-schema.json."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def ray_requirement() -> Requirement:
    deps = [Requirement(d) for d in pyproject()["project"]["dependencies"]]
    return next(r for r in deps if r.name == "ray")


@pytest.mark.parametrize("name", FILES)
def test_rays_launcher_accepts_the_file(name):
    prepared = launcher_checks(load(name))
    assert prepared["available_node_types"]


def test_the_launcher_check_rejects_a_broken_file():
    from jsonschema import ValidationError

    broken = load("cluster-aws.yaml")
    broken["available_node_types"]["gateway"]["max_wokers"] = 1  # a typo Ray must catch
    with pytest.raises(ValidationError):
        launcher_checks(broken)


def test_aws_exactly_one_node_type_carries_the_gateway_resource_and_at_most_one_node():
    config = launcher_checks(load("cluster-aws.yaml"))
    types = config["available_node_types"]
    carriers = [name for name, t in types.items() if t.get("resources", {}).get(GATEWAY)]
    assert carriers == ["gateway"]
    assert types["gateway"]["max_workers"] == types["gateway"]["min_workers"] == 1
    assert config["head_node_type"] != "gateway"
    assert types["writer"]["max_workers"] > types["writer"]["min_workers"]  # autoscaling
    for node_type in types.values():  # S3 through the instance profile, no keys
        assert node_type["node_config"]["IamInstanceProfile"]["Name"]


def test_on_prem_gives_the_gateway_resource_to_exactly_one_listed_worker():
    config = load("cluster.yaml")
    assert config["provider"]["type"] == "local"
    workers = config["provider"]["worker_ips"]
    assert len(workers) >= 2  # the gateway plus at least one writer
    head_commands = " ".join(config["head_start_ray_commands"])
    worker_commands = " ".join(config["worker_start_ray_commands"])
    assert GATEWAY not in head_commands
    gateway_ips = re.findall(r"GATEWAY_IP=(\S+?)\s*&&", worker_commands)
    assert len(gateway_ips) == 1 and workers.count(gateway_ips[0]) == 1
    assert worker_commands.count(GATEWAY) == 1  # given only inside the GATEWAY_IP branch


@pytest.mark.parametrize("name", FILES)
def test_no_secret_in_the_file_and_the_token_is_shipped_private(name):
    text = (ROOT / name).read_text()
    config = load(name)
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)  # an AWS access key id
    for secret in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "RAY_AUTH_TOKEN"):
        assert not re.search(rf"{secret}\s*[=:]\s*\S", text), secret
    mounts = config["file_mounts"]
    assert mounts.get("~/.ray/auth_token") == "~/.ray/auth_token"
    setup = " ".join(config["setup_commands"])
    assert re.search(r"chmod 600 [^&]*~/\.ray/auth_token", setup)
    for command in config["head_start_ray_commands"] + config["worker_start_ray_commands"]:
        assert "RAY_AUTH_MODE=token" in command
        assert "ray stop" not in command  # it would end every Ray cluster on the machine
    assert "--dashboard-host=127.0.0.1" in " ".join(config["head_start_ray_commands"])
    assert "--data-dir s3://" in text


@pytest.mark.parametrize("name", FILES)
def test_versions_are_pinned_to_pyprojects(name):
    setup = " ".join(load(name)["setup_commands"])
    ray_pin = re.search(r'"ray\[default\]==([0-9.]+)"', setup)
    v6ray_pin = re.search(r'"v6ray==([0-9.]+)"', setup)
    assert ray_pin and v6ray_pin
    assert Version(ray_pin.group(1)) in ray_requirement().specifier
    assert v6ray_pin.group(1) == pyproject()["project"]["version"]


def test_the_installed_ray_is_inside_the_tested_range():
    """The range's upper bound is the newest Ray this suite ran on: CI installs the newest
    the range allows, so a bound above an untested release would fail here first."""
    requirement = ray_requirement()
    assert Version(ray.__version__) in requirement.specifier
    floor = min(Version(s.version) for s in requirement.specifier if s.operator == ">=")
    assert floor >= Version("2.52")  # token auth (RAY_AUTH_MODE=token) arrived in 2.52
