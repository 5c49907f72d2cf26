"""Dashboards, scrape configs, log pipelines and the operations guide agree with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

import shared.logs

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
DOCS = REPO / "docs" / "operations.md"
_METRIC = re.compile(r"(Counter|Gauge|Histogram|Summary)\(\s*\"(jitnode_[a-z0-9_]+)\"", re.S)


def exposed_metrics() -> set[str]:
    """Every series name the services expose, with prometheus_client's suffixes."""
    out: set[str] = set()
    for path in (REPO / "extender" / "metrics.py", REPO / "launcher" / "metrics.py"):
        for kind, name in _METRIC.findall(path.read_text()):
            base = name.removesuffix("_total")
            if kind == "Counter":
                out.add(f"{base}_total")
            elif kind == "Histogram":
                out.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
                out.add(name)
            else:
                out.add(name)
    return out


def test_metric_discovery_works() -> None:
    metrics = exposed_metrics()
    assert "jitnode_launcher_launches_total" in metrics
    assert "jitnode_extender_requests_total" in metrics
    assert "jitnode_extender_request_seconds_bucket" in metrics


def test_dashboard_queries_only_existing_metrics() -> None:
    dashboard = json.loads((MANIFESTS / "monitoring" / "jitnode-dashboard.json").read_text())
    titles = {p["title"] for p in dashboard["panels"]}
    for wanted in ("Pending demand", "Launch latency", "NodeClaims by phase", "Extender latency"):
        assert wanted in titles
    assert any("Cost per hour" in t for t in titles)
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"jitnode_[a-z0-9_]+", e)}
    assert used, "no jitnode metric in the dashboard"
    unknown = used - exposed_metrics()
    assert not unknown, f"dashboard uses metrics nothing exposes: {sorted(unknown)}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_docs_list_only_existing_metrics() -> None:
    documented = set(re.findall(r"`(jitnode_[a-z0-9_]+)", DOCS.read_text()))
    assert len(documented) >= 10
    assert not documented - exposed_metrics()


def test_service_monitors_select_the_metrics_ports() -> None:
    monitors = list(yaml.safe_load_all((MANIFESTS / "monitoring" / "servicemonitors.yaml").read_text()))
    services: list[dict[str, Any]] = []
    for component in ("extender", "launcher"):
        services += [d for d in yaml.safe_load_all((MANIFESTS / component / "service.yaml").read_text()) if d]
    for monitor in monitors:
        selector = monitor["spec"]["selector"]["matchLabels"]
        matched = [s for s in services if selector.items() <= s["metadata"]["labels"].items()]
        assert len(matched) == 1, monitor["metadata"]["name"]
        ports = {p["name"] for p in matched[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports
            assert endpoint["scheme"] == "https"
            assert endpoint["tlsConfig"]["ca"]["secret"]["key"] == "ca.crt"


def _log_keys() -> set[str]:
    doc = shared.logs.__doc__ or ""
    return set(re.findall(r"^``([a-z_]+)``\s", doc, re.M))


def test_docs_document_every_log_key() -> None:
    keys = _log_keys()
    assert {"ts", "level", "component", "event", "pod", "nodepool", "instance_id"} <= keys
    text = DOCS.read_text()
    for key in keys:
        assert f"| `{key}` |" in text, key


def test_logql_questions_use_events_the_code_logs() -> None:
    text = DOCS.read_text()
    sources = "\n".join(p.read_text() for p in (REPO / "launcher").rglob("*.py"))
    for event in re.findall(r'event="([^"]+)"', text):
        assert f'"{event}"' in sources, event
    for event in re.findall(r'event=~"([^"]+)"', text):
        for alternative in event.split("|"):
            assert f'"{alternative}"' in sources, alternative


def test_promtail_pipeline_labels_level_component_nodepool() -> None:
    config = yaml.safe_load((MANIFESTS / "logging" / "promtail.yaml").read_text())
    (job,) = config["scrape_configs"]
    stages = {next(iter(s)): s[next(iter(s))] for s in job["pipeline_stages"]}
    assert {"level", "component", "nodepool"} <= set(stages["json"]["expressions"])
    assert set(stages["labels"]) == {"level", "component", "nodepool"}
    assert stages["timestamp"]["source"] == "ts"
    alloy = (MANIFESTS / "logging" / "config.alloy").read_text()
    for key in ("level", "component", "nodepool"):
        assert re.search(rf"^\s+{key}\s+=\s+\"\",$", alloy, re.M), key
