"""What changes meaning when a workload moves to another vLLM release (upgrade-change)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.server.conftest import review
from webhook.engine import Item, Settings, analyze, link_tables
from webhook.server.admission import ClusterView, decide, parse_review
from webhook.server.policy import read_snapshot

SIDE_CHANNEL = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "vllm-nixl-side-channel", "namespace": "llm"},
                "spec": {"clusterIP": "10.96.0.40", "ports": [{"port": 5600}]}}


def deployment(image: str = "vllm/vllm-openai:v0.8.1") -> dict[str, Any]:
    env = {"VLLM_USE_V1": "1", "VLLM_ATTENTION_BACKEND": "FLASHINFER", "VLLM_KEEP_ALIVE_ON_ENGINE_DEATH": "0",
           "VLLM_LOGGING_LEVEL": "INFO"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "llm", "namespace": "llm"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [
                {"name": "vllm", "image": image, "env": [{"name": k, "value": v} for k, v in env.items()]}]}}}}


def changes(findings: list[Any]) -> dict[str | None, str]:
    return {f.variable: f.message for f in findings if f.rule == "upgrade-change"}


def test_upgrade_to_lists_what_changes_meaning() -> None:
    found = changes(analyze([Item(deployment()), Item(SIDE_CHANNEL)], Settings(upgrade_to="0.33.0")))
    assert set(found) == {"VLLM_USE_V1", "VLLM_ATTENTION_BACKEND", "VLLM_KEEP_ALIVE_ON_ENGINE_DEATH",
                          "VLLM_NIXL_SIDE_CHANNEL_PORT"}
    assert "VLLM_USE_V1: removed" in found["VLLM_USE_V1"]
    assert "(True -> False)" in found["VLLM_KEEP_ALIVE_ON_ENGINE_DEATH"]
    assert "starts to collide" in found["VLLM_NIXL_SIDE_CHANNEL_PORT"]
    assert all(m.startswith("from vLLM 0.8.1 to 0.33.0: ") for m in found.values())


def test_nothing_is_reported_without_an_upgrade_or_to_the_same_release() -> None:
    assert changes(analyze([Item(deployment())], Settings())) == {}
    assert changes(analyze([Item(deployment())], Settings(upgrade_to="0.8.1"))) == {}


def test_the_command_line_option(tmp_path: Path) -> None:
    import json

    path = tmp_path / "llm.json"
    path.write_text(json.dumps(deployment()))
    result = subprocess.run([sys.executable, "-m", "webhook", "lint", str(path), "--upgrade-to", "0.33.0"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "upgrade-change from vLLM 0.8.1 to 0.33.0: VLLM_USE_V1" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "webhook", "lint", str(path), "--upgrade-to", "soon"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "--upgrade-to" in bad.stderr


def test_an_update_that_changes_the_release_warns_with_the_same_list() -> None:
    old, new = deployment(), deployment("vllm/vllm-openai:v0.33.0")
    view = ClusterView(links=link_tables([SIDE_CHANNEL]))
    decision = decide(parse_review(review(new, "UPDATE", old=old)), read_snapshot(None), view)
    upgrade = [w for w in decision.warnings if w.startswith("[upgrade-change")]
    assert any("VLLM_USE_V1" in w for w in upgrade) and any("VLLM_NIXL_SIDE_CHANNEL_PORT" in w for w in upgrade)
    same = copy.deepcopy(old)
    same["metadata"]["labels"] = {"team": "a"}
    unchanged = decide(parse_review(review(same, "UPDATE", old=old)), read_snapshot(None), view)
    assert not [w for w in unchanged.warnings if w.startswith("[upgrade-change")]


def test_a_secret_reached_through_an_expansion_is_not_shown_in_what_changes() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "HF_TOKEN", "value": "hf_c4n4ry_token"}, {"name": "VLLM_PORT", "value": "$(HF_TOKEN)"}]
    found = changes(analyze([Item(obj)], Settings(upgrade_to="0.33.0")))
    assert "VLLM_PORT" in found and "not shown: the value is secret" in found["VLLM_PORT"]
    assert all("c4n4ry" not in message for message in found.values())
