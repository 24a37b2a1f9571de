"""deployments/ray-cluster.yaml against Ray's own cluster-config validation (its JSON schema)."""

import copy
from pathlib import Path

import pytest
import yaml

CONFIG = Path(__file__).resolve().parent.parent / "deployments" / "ray-cluster.yaml"


def load():
    return yaml.safe_load(CONFIG.read_text())


def test_ray_validates_the_cluster_config():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = load()
    validate_config(prepare_config(config))  # fills Ray's defaults, then checks the schema
    assert config["provider"]["type"] == "aws"
    workers = config["available_node_types"]["cpu_worker"]
    assert workers["min_workers"] == 0 and workers["max_workers"] > 0  # autoscaling from zero
    assert any("10001" in c for c in config["head_start_ray_commands"])  # ray:// clients can join
    assert any("/fsx" in c for c in config["setup_commands"])  # workers write to the staging mount


def test_ray_validation_catches_a_broken_config():
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = copy.deepcopy(load())
    broken["available_node_types"]["cpu_worker"]["max_workers"] = "many"
    with pytest.raises(Exception, match="many|max_workers|not of type"):
        validate_config(prepare_config(broken))
