"""hadis as a Ray Serve application (hadis.deploy.ray_serve): the API behind Serve's proxy,
workers as actors; the repo's Serve and KubeRay configs name a valid app and arguments."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import yaml

from hadis.deploy.ray_serve import AppArgs
from tests.serve_helpers import free_port

ROOT = Path(__file__).resolve().parent.parent


def _serve_configs() -> list[dict]:
    serve_yaml = yaml.safe_load((ROOT / "deploy/ray/serve.yaml").read_text())
    kuberay = yaml.safe_load((ROOT / "deploy/kuberay/rayservice.yaml").read_text())
    return [serve_yaml, yaml.safe_load(kuberay["spec"]["serveConfigV2"])]


@pytest.mark.parametrize("config", _serve_configs(), ids=["serve.yaml", "rayservice.yaml"])
def test_the_deploy_configs_name_the_app_and_valid_arguments(config):
    (app,) = config["applications"]
    assert app["import_path"] == "hadis.deploy.ray_serve:app_builder"
    args = AppArgs(**app["args"])
    assert args.workers == "auto"


def test_unknown_app_arguments_are_refused():
    with pytest.raises(ValueError, match="profil"):
        AppArgs(profil="demo-cpu")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_api_through_ray_serve(monkeypatch):
    ray = pytest.importorskip("ray", reason="needs the [ray] extra")
    from ray import serve

    from hadis.deploy.ray_serve import app_builder

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="serve-test")
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        args = {
            "profile": "hadis-l40s",
            "executor": "profile",
            "router": "reference",
            "discriminator": "reference",
            "workers": 2,
            "worker_cpus": 0.2,
            "ingress_cpus": 0.2,
            "time_scale": 0.01,
            "namespace": "hadis-serve-test",
            "api_keys": ["k1"],
        }
        serve.run(app_builder(args), route_prefix="/", name="hadis")
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while httpx.get(f"{base}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "not ready"
            time.sleep(0.2)
        auth = {"Authorization": "Bearer k1"}
        assert httpx.post(f"{base}/v1/images/generations", json={"prompt": "x"}).status_code == 401
        r = httpx.post(
            f"{base}/v1/images/generations", json={"prompt": "a cat"}, headers=auth, timeout=60
        )
        assert r.status_code == 200, r.text
        assert r.json()["data"][0]["b64_json"]
        plan = httpx.get(f"{base}/v1/plan", headers=auth).json()
        assert plan["backend"] == "ray" and len(plan["workers"]) == 2
        names = {(a["namespace"], a["name"]) for a in ray.util.list_named_actors(True)}
        assert ("hadis-serve-test", "hadis-worker-0") in names
    finally:
        serve.shutdown()
        ray.shutdown()
