"""The Helm chart, rendered offline: every mode validates strictly against the Kubernetes schemas,
the config it renders is one the exporter accepts, and contradictory values fail clearly."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from exporter.cli import build_parser
from exporter.config.flag_source import apply_shard_arguments
from exporter.config.models import load_settings
from tests.deploy.charts import (
    CHART,
    SOURCE,
    Doc,
    container,
    example_chart,
    kinds,
    notes,
    one,
    pod_spec,
    render,
    validate,
)

BASE: dict[str, Any] = {"sources": [SOURCE], "tokens": {"values": {"support": "s3cr3t"}}}
EVERYTHING: dict[str, Any] = BASE | {
    "serviceMonitor": {"enabled": True},
    "prometheusRule": {"enabled": True},
    "dashboard": {"enabled": True},
    "config": {"traces": {"exporter": "otlp", "endpoint": "http://collector:4318"}},
}
SHARDED: dict[str, Any] = BASE | {
    "mode": "statefulset",
    "replicas": 3,
    "sharding": {"enabled": True},
}


def config_of(docs: list[Doc], tmp_path: Path, env: dict[str, str]) -> Any:
    """Load the rendered config.yaml with the real loader, as the pod would."""
    text = one(docs, "ConfigMap", "are-agent-runs-exporter")["data"]["config.yaml"]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_settings(path, environ=env)


def test_default_values_render_a_valid_single_deployment() -> None:
    docs = render(BASE)
    assert kinds(docs) == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Secret", "Service"]
    validate(docs)
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_probes_point_at_healthz_and_readyz_on_the_metrics_port() -> None:
    docs = render(BASE)
    exporter = container(pod_spec(one(docs, "Deployment")))
    http = {"port": "metrics", "scheme": "HTTP"}
    assert exporter["livenessProbe"]["httpGet"] == {"path": "/healthz", **http}
    assert exporter["readinessProbe"]["httpGet"] == {"path": "/readyz", **http}
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    (port,) = one(docs, "Service")["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (9464, "metrics")


def test_pod_runs_restricted() -> None:
    spec = pod_spec(one(render(BASE), "Deployment"))
    assert spec["automountServiceAccountToken"] is False
    pod = spec["securityContext"]
    assert (pod["runAsNonRoot"], pod["runAsUser"], pod["runAsGroup"]) == (True, 10001, 10001)
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(spec)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m for m in container(spec)["volumeMounts"]}
    assert set(mounts) == {"/etc/agent-runs-exporter", "/var/lib/agent-runs-exporter", "/tmp"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["agent-runs-exporter-state"]["persistentVolumeClaim"] == {
        "claimName": "are-agent-runs-exporter"
    }


def test_rendered_config_is_accepted_by_the_exporter(tmp_path: Path) -> None:
    docs = render(EVERYTHING)
    exporter = container(pod_spec(one(docs, "Deployment")))
    (env,) = exporter["env"]
    ref = env["valueFrom"]["secretKeyRef"]
    secret = one(docs, "Secret", ref["name"])
    token = base64.b64decode(secret["data"][ref["key"]]).decode()
    settings = config_of(docs, tmp_path, {env["name"]: token})
    assert settings.listen_address == ("0.0.0.0", 9464)
    assert settings.state.path == "/var/lib/agent-runs-exporter/state.db"
    assert settings.sources[0].resolved_token() == "s3cr3t"
    assert settings.traces.endpoint == "http://collector:4318"
    assert exporter["args"] == ["run", "--config=/etc/agent-runs-exporter/config.yaml"]


def test_config_checksum_follows_the_config() -> None:
    def checksum(values: dict[str, Any]) -> str:
        template = one(render(values), "Deployment")["spec"]["template"]
        return str(template["metadata"]["annotations"]["checksum/config"])

    assert checksum(BASE) == checksum(BASE)
    assert checksum(BASE) != checksum(BASE | {"config": {"poll_interval": "1m"}})


def test_existing_secret_and_unauthenticated_sources(tmp_path: Path) -> None:
    values = {
        "sources": [SOURCE, SOURCE | {"name": "open.sim", "tokenSecretKey": ""}],
        "tokens": {"existingSecret": "conduit-tokens"},
    }
    docs = render(values)
    assert "Secret" not in kinds(docs)
    (env,) = container(pod_spec(one(docs, "Deployment")))["env"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "conduit-tokens", "key": "support"}
    settings = config_of(docs, tmp_path, {"SOURCE_TOKEN_SUPPORT": "tok-existing"})
    assert [s.resolved_token() for s in settings.sources] == ["tok-existing", None]


def test_statefulset_shards_take_the_shard_from_the_pod_ordinal(tmp_path: Path) -> None:
    docs = render(SHARDED)
    validate(docs)
    assert kinds(docs) == ["ConfigMap", "Secret", "Service", "Service", "StatefulSet"]
    statefulset = one(docs, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["serviceName"] == "are-agent-runs-exporter-headless"
    assert one(docs, "Service", "are-agent-runs-exporter-headless")["spec"]["clusterIP"] == "None"
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "agent-runs-exporter-state"
    exporter = container(pod_spec(statefulset))
    shard_env = next(
        e for e in exporter["env"] if e["name"] == "AGENT_RUNS_EXPORTER_SHARDING__SHARD"
    )
    field = shard_env["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.labels['apps.kubernetes.io/pod-index']"
    # What pod 2 would run: its ordinal from the environment, the total from the config.
    env = {shard_env["name"]: "2", "SOURCE_TOKEN_SUPPORT": "tok-sharded"}
    settings = config_of(docs, tmp_path, env)
    args = build_parser().parse_args(exporter["args"])
    sharding = apply_shard_arguments(settings, args).sharding
    assert (sharding.shard, sharding.total_shards) == (2, 3)


def test_everything_optional_renders_valid_operator_resources() -> None:
    docs = render(EVERYTHING)
    validate(docs)
    service = one(docs, "Service")
    monitor = one(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "agent-runs-exporter"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    dashboard = one(docs, "ConfigMap", "are-agent-runs-exporter-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "files" / "dashboard.json").read_text())
    assert json.loads(dashboard["data"]["agent-runs-exporter.json"]) == shipped
    rules = one(docs, "PrometheusRule")["spec"]["groups"][0]["rules"]
    assert "AgentRunsCostBurnHigh" not in {rule["alert"] for rule in rules}  # off by default


def test_pod_monitor_instead_of_a_service_monitor() -> None:
    docs = render(BASE | {"podMonitor": {"enabled": True}})
    validate(docs)
    monitor = one(docs, "PodMonitor")
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


def test_sidecar_mode_renders_only_the_config() -> None:
    assert kinds(render(BASE | {"mode": "sidecar"})) == ["ConfigMap", "Secret"]


def test_sidecar_example_adds_the_exporter_beside_a_collector(tmp_path: Path) -> None:
    docs = render({}, chart=example_chart(tmp_path), release="my-agent-app")
    validate(docs)
    deployment = one(docs, "Deployment")
    spec = pod_spec(deployment)
    assert [c["name"] for c in spec["containers"]] == [
        "app",
        "otel-collector",
        "agent-runs-exporter",
    ]
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    for volume in spec["volumes"]:
        if "configMap" in volume:
            assert volume["configMap"]["name"] in configmaps
    exporter_config = yaml.safe_load(
        configmaps["my-agent-app-agent-runs-exporter"]["data"]["config.yaml"]
    )
    collector = yaml.safe_load(configmaps["my-agent-app-otelcol"]["data"]["config.yaml"])
    receiver = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert exporter_config["traces"]["endpoint"] == f"http://{receiver}"
    monitor = one(docs, "PodMonitor")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    exporter = container(spec)
    assert exporter["env"][0]["valueFrom"]["secretKeyRef"] == {
        "name": "conduit-tokens",
        "key": "support",
    }


@pytest.mark.parametrize(
    "values",
    [BASE, SHARDED, EVERYTHING, BASE | {"mode": "sidecar"}],
    ids=["default", "sharded", "everything", "sidecar"],
)
def test_lint_strict_is_clean(values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True, kube_version="v1.32.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (BASE | {"replicas": 2}, "replicas=2 without sharding would poll every agent 2 times"),
        (
            BASE | {"mode": "statefulset", "replicas": 2},
            "set mode=statefulset and sharding.enabled",
        ),
        (BASE | {"sharding": {"enabled": True}}, "sharding.enabled needs mode=statefulset"),
        ({"sources": []}, "no sources configured"),
        ({}, "no sources configured"),
        (
            BASE | {"serviceMonitor": {"enabled": True, "requireCRD": True}},
            "does not serve monitoring.coreos.com/v1/ServiceMonitor",
        ),
        (
            BASE | {"prometheusRule": {"enabled": True, "requireCRD": True}},
            "does not serve monitoring.coreos.com/v1/PrometheusRule",
        ),
        (
            BASE | {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}},
            "not both",
        ),
        (BASE | {"mode": "sidecar", "serviceMonitor": {"enabled": True}}, "no Service to monitor"),
        (
            {"sources": [SOURCE | {"token": "inline"}]},
            r"sources\[0\] \(support\) has an inline token.*set tokens.existingSecret",
        ),
    ],
)
def test_contradictory_values_fail_with_a_clear_message(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (BASE | {"mode": "daemonset"}, "/mode"),
        (BASE | {"replicas": 0}, "/replicas"),
        ({"sources": [{"name": "x", "platform": "conduit", "agents": ["a"]}]}, "base_url"),
        (BASE | {"config": {"listen": "0.0.0.0:1"}}, "/config"),
        (BASE | {"alerts": {"failureRatio": {"enabled": True, "threshold": 2}}}, "threshold"),
        ({"sources": [SOURCE | {"headers": {"X-Org": 1}}]}, "/headers/X-Org"),
    ],
)
def test_schema_rejects_bad_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=message):
        render(values)


def test_notes_say_what_to_do_next() -> None:
    text = notes(BASE)
    assert "kubectl -n monitoring port-forward svc/are-agent-runs-exporter 9464" in text
    assert "serviceMonitor.enabled=true" in text
    assert "Traces are off" in text
    sidecar = notes(BASE | {"mode": "sidecar"})
    assert 'include "agent-runs-exporter.container"' in sidecar
    assert "pod ordinal" not in sidecar
    assert "each polling the agents its ordinal owns" in notes(SHARDED)


def test_a_header_value_comes_from_a_secret_through_extra_env(tmp_path: Path) -> None:
    acp = {
        "name": "computer",
        "platform": "acp",
        "base_url": "https://api.computer-agents.com",
        "agents": ["srv_7f3a9c"],
        "headers": {"X-Computer-Agents-Organization": "${ACP_ORGANIZATION}"},
    }
    from_secret = {"secretKeyRef": {"name": "acp-organization", "key": "id"}}
    values = {
        "sources": [acp],
        "tokens": {"values": {"computer": "tb_chart_token_1"}},
        "extraEnv": [{"name": "ACP_ORGANIZATION", "valueFrom": from_secret}],
    }
    docs = render(values)
    validate(docs)
    config = one(docs, "ConfigMap", "are-agent-runs-exporter")["data"]["config.yaml"]
    assert "X-Computer-Agents-Organization: ${ACP_ORGANIZATION}" in config  # expanded in the pod
    env = {item["name"]: item for item in container(pod_spec(one(docs, "Deployment")))["env"]}
    assert env["ACP_ORGANIZATION"]["valueFrom"] == from_secret
    settings = config_of(
        docs,
        tmp_path,
        {"SOURCE_TOKEN_COMPUTER": "tb_chart_token_1", "ACP_ORGANIZATION": "org_from_secret"},
    )
    assert settings.sources[0].resolved_headers() == {
        "X-Computer-Agents-Organization": "org_from_secret"
    }


def test_a_discovering_source_needs_no_agents(tmp_path: Path) -> None:
    source = {"name": "builders", "platform": "runtype", "base_url": "https://api.runtype.com"}
    docs = render({"sources": [source], "tokens": {"values": {"builders": "tok-runtype-1"}}})
    validate(docs)
    settings = config_of(docs, tmp_path, {"SOURCE_TOKEN_BUILDERS": "tok-runtype-1"})
    assert settings.sources[0].agents is None


def test_web_config_secret_turns_on_tls_probes_and_monitor_settings(tmp_path: Path) -> None:
    web = {"existingSecret": "exporter-web", "tls": True}
    endpoint = {"scheme": "https", "tlsConfig": {"insecureSkipVerify": True}}
    docs = render(BASE | {"web": web, "serviceMonitor": {"enabled": True, "endpoint": endpoint}})
    validate(docs)
    spec = pod_spec(one(docs, "Deployment"))
    exporter = container(spec)
    assert exporter["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert exporter["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["agent-runs-exporter-web"]["secret"] == {"secretName": "exporter-web"}
    mounts = {m["name"]: m["mountPath"] for m in exporter["volumeMounts"]}
    assert mounts["agent-runs-exporter-web"] == "/etc/agent-runs-exporter-web"
    settings = config_of(docs, tmp_path, {"SOURCE_TOKEN_SUPPORT": "tok-web-1"})
    assert settings.web.config_file == "/etc/agent-runs-exporter-web/web-config.yml"
    assert settings.web.health_without_auth is True
    (monitor_endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert monitor_endpoint.items() >= endpoint.items()
