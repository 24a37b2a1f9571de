"""deployments/parallelcluster/cluster.yaml, checked offline against ParallelCluster 3's rules."""

from pathlib import Path

import yaml

CONFIG = Path(__file__).resolve().parents[1] / "deployments" / "parallelcluster" / "cluster.yaml"
# FSx for Lustre rules that ParallelCluster and FSx enforce at create time.
THROUGHPUT = {"PERSISTENT_1": {50, 100, 200}, "PERSISTENT_2": {125, 250, 500, 1000}}
LINKED_TYPES = {"SCRATCH_1", "SCRATCH_2", "PERSISTENT_1"}  # ImportPath/ExportPath allowed
AUTO_IMPORT = {"NEW", "NEW_CHANGED", "NEW_CHANGED_DELETED"}


def fsx_problems(settings: dict) -> list[str]:
    problems = []
    kind = settings.get("DeploymentType")
    if kind not in {"SCRATCH_1", "SCRATCH_2", "PERSISTENT_1", "PERSISTENT_2"}:
        problems.append(f"DeploymentType {kind!r} unknown")
    capacity = settings.get("StorageCapacity", 0)
    if kind != "SCRATCH_1" and not (capacity == 1200 or (capacity and capacity % 2400 == 0)):
        problems.append(f"StorageCapacity {capacity} must be 1200 or a multiple of 2400 GiB")
    if kind in THROUGHPUT and settings.get("PerUnitStorageThroughput") not in THROUGHPUT[kind]:
        problems.append(f"PerUnitStorageThroughput must be one of {sorted(THROUGHPUT[kind])} for {kind}")
    if kind not in THROUGHPUT and "PerUnitStorageThroughput" in settings:
        problems.append(f"PerUnitStorageThroughput is only for persistent types, not {kind}")
    linked = {"ImportPath", "ExportPath", "AutoImportPolicy", "ImportedFileChunkSize"} & set(settings)
    if linked and kind not in LINKED_TYPES:
        problems.append(f"{sorted(linked)} need a {sorted(LINKED_TYPES)} deployment, not {kind}")
    if "ImportPath" in settings:
        bucket = settings["ImportPath"].split("/")[2]
        if not settings.get("ExportPath", "").startswith(f"s3://{bucket}/"):
            problems.append("ExportPath must be in the ImportPath bucket")
        if settings.get("AutoImportPolicy") not in AUTO_IMPORT:
            problems.append(f"AutoImportPolicy must be one of {sorted(AUTO_IMPORT)}")
    elif "ExportPath" in settings or "AutoImportPolicy" in settings:
        problems.append("ExportPath/AutoImportPolicy need ImportPath")
    return problems


def test_cluster_config_is_valid_yaml_with_the_required_sections():
    config = yaml.safe_load(CONFIG.read_text())
    for key in ("Region", "Image", "HeadNode", "Scheduling", "SharedStorage"):
        assert key in config, key
    assert config["HeadNode"]["Networking"]["SubnetId"].startswith("subnet-")
    assert config["HeadNode"]["Ssh"]["KeyName"]
    assert config["Scheduling"]["Scheduler"] == "slurm"
    assert {"Uri", "UserName", "PasswordSecretArn"} <= set(config["Scheduling"]["SlurmSettings"]["Database"])


def test_queues_cpu_and_gpu():
    queues = {q["Name"]: q for q in yaml.safe_load(CONFIG.read_text())["Scheduling"]["SlurmQueues"]}
    assert set(queues) == {"cpu", "gpu"}
    for queue in queues.values():
        assert queue["Networking"]["SubnetIds"]
        for resource in queue["ComputeResources"]:
            assert resource["MinCount"] <= resource["MaxCount"] and resource["Instances"]
    cpu_types = [i["InstanceType"] for r in queues["cpu"]["ComputeResources"] for i in r["Instances"]]
    gpu_types = [i["InstanceType"] for r in queues["gpu"]["ComputeResources"] for i in r["Instances"]]
    assert all(t.startswith(("c5", "c6", "c7")) for t in cpu_types)  # compute-optimized
    assert all(t.startswith(("g4", "g5", "g6", "p3", "p4", "p5")) for t in gpu_types)


def test_fsx_on_fsx_with_s3_link_is_consistent():
    storage = yaml.safe_load(CONFIG.read_text())["SharedStorage"]
    fsx = [s for s in storage if s["StorageType"] == "FsxLustre"]
    assert len(fsx) == 1 and fsx[0]["MountDir"] == "/fsx"
    settings = fsx[0]["FsxLustreSettings"]
    assert fsx_problems(settings) == []
    assert settings["ImportPath"].startswith("s3://") and settings["AutoImportPolicy"] == "NEW_CHANGED_DELETED"


def test_the_checker_catches_inconsistent_fsx_settings():
    assert fsx_problems({"DeploymentType": "PERSISTENT_2", "StorageCapacity": 1200, "PerUnitStorageThroughput": 250,
                         "ImportPath": "s3://b/x", "ExportPath": "s3://b/y", "AutoImportPolicy": "NEW"})
    assert fsx_problems({"DeploymentType": "PERSISTENT_1", "StorageCapacity": 1000, "PerUnitStorageThroughput": 50})
    assert fsx_problems({"DeploymentType": "SCRATCH_2", "StorageCapacity": 1200, "ImportPath": "s3://a/x",
                         "ExportPath": "s3://b/y", "AutoImportPolicy": "NEW"})
