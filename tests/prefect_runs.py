"""Test helper: a flow run's id with its subflows' (the align-sample run of each sample),
where tests look for task runs and artifacts."""


def run_ids(client, flow_run_id) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
    return [flow_run_id] + [r.id for r in children]


def is_subflow_stand_in(task_run) -> bool:
    """Prefect records each subflow call as a task run of its parent; it fails with it."""
    return task_run.name.startswith("align-sample")
