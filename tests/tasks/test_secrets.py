from evalcore.config import ModelSpec
from tasks.secrets import endpoint_tag


def model(base_url: str) -> ModelSpec:
    params = {"base_url": base_url, "model": "m"}
    return ModelSpec(name="api", kind="openai-compatible", params=params)


def test_endpoint_tag_names_host_and_port_for_prefect_concurrency_limits():
    assert endpoint_tag(model("http://127.0.0.1:8000/v1")) == "api-127.0.0.1-8000"
    assert endpoint_tag(model("https://api.openai.com/v1")) == "api-api.openai.com"
