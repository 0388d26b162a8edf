"""The run-summary hook never raises: a run whose parameters are not a valid config gets
a summary that says so (without echoing a value), and the hook's own errors are logged."""

from __future__ import annotations

from types import SimpleNamespace

from flows.hooks import SUMMARY_KEY, publish_run_summary


def latest_summary() -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[SUMMARY_KEY]))
        )
    return sorted(artifacts, key=lambda a: a.created)[-1].data


def test_invalid_parameters_get_a_summary_not_an_exception(prefect_harness):
    pasted = "sk-proj-Secret123456"
    flow_run = SimpleNamespace(
        id=None,
        name="brave-otter",
        parameters={
            "config": {
                "datasets": [],
                "models": [{"name": "m", "kind": "random", "params": {"api_key": pasted}}],
            }
        },
    )
    state = SimpleNamespace(name="Failed", is_completed=lambda: False)
    publish_run_summary(None, flow_run, state)  # must not raise
    text = latest_summary()
    assert "brave-otter" in text and "not a valid config" in text
    assert "datasets" in text and pasted not in text


def test_a_broken_hook_logs_instead_of_raising(prefect_harness, caplog):
    flow_run = SimpleNamespace(id=None, name="x", parameters=None)  # not even a mapping
    state = SimpleNamespace(name="Crashed", is_completed=lambda: False)
    publish_run_summary(None, flow_run, state)
    assert "run summary for x could not be published" in caplog.text
