"""deploy/ and the Dockerfile stay true: the files parse, every forwarder config they carry validates
against today's config schema, the Helm templates use only values that exist, and the hardening the
operations guide promises (non-root, read-only root, no capabilities, one replica, Recreate) is there.
helm is not installable here, so templates are checked for their value references, not rendered."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from forwarder import config as config_module

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "sf-forwarder"
SECRETS_DIR = "/etc/sf-forwarder/secrets/"


def _load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def _validate(document: dict[str, Any], secrets: dict[str, Path], where: str) -> config_module.Config:
    """Validate a config whose ``*_file`` secrets point at mounts: they are read from stand-in files."""

    def relocate(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: relocate(v) for k, v in node.items()}
        if isinstance(node, list):
            return [relocate(v) for v in node]
        if isinstance(node, str):
            for mount, local in secrets.items():
                if node.startswith(mount):
                    return str(local / node.removeprefix(mount))
        return node

    return config_module.parse(relocate(document), where)


def _stand_in_secrets(tmp_path: Path, document: dict[str, Any], mount: str) -> Path:
    """A folder holding a dummy file for every ``*_file`` under ``mount`` the document names."""
    text = yaml.safe_dump(document)
    for name in re.findall(re.escape(mount) + r"([\w.-]+)", text):
        (tmp_path / name).write_text("dummy-secret-value\n")
    return tmp_path


# --- compose --------------------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_services_of_our_image_are_hardened() -> None:
    services = _compose()["services"]
    ours = {name: s for name, s in services.items() if s.get("image", "").startswith("localhost/sf-forwarder")}
    assert set(ours) == {"simulator", "splunk", "datadog", "forwarder"}
    for name, service in ours.items():
        assert service["read_only"] is True, name
        assert service["user"] == "10001:10001", name
        assert service["cap_drop"] == ["ALL"], name
    assert services["forwarder"]["stop_grace_period"] == "30s"
    assert (DEPLOY / services["simulator"]["build"]["context"] / "Dockerfile").is_file()


def test_compose_local_files_exist() -> None:
    compose = _compose()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
    for secret in compose["secrets"].values():
        assert (DEPLOY / secret["file"]).is_file(), secret


def test_compose_forwarder_config_is_valid_and_uses_the_secrets() -> None:
    compose = _compose()
    document = yaml.safe_load((DEPLOY / "compose" / "config.yaml").read_text(encoding="utf-8"))
    config = _validate(document, {"/run/secrets/": DEPLOY / "compose" / "secrets"}, "compose/config.yaml")
    assert config.server.listen.endswith(":9108")
    assert str(config.state.path).startswith("/var/lib/sf-forwarder/")
    forwarder = compose["services"]["forwarder"]
    assert set(forwarder["secrets"]) == set(compose["secrets"])
    assert "9108:9108" in compose["services"]["simulator"]["ports"]  # the namespace owner publishes it


def test_compose_prometheus_scrapes_the_forwarder_and_grafana_gets_the_dashboard() -> None:
    prometheus = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text(encoding="utf-8"))
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == ["simulator:9108"]
    grafana = _compose()["services"]["grafana"]
    assert any(v.startswith("./grafana/sf-forwarder.json:") for v in grafana["volumes"])
    for path in (DEPLOY / "grafana" / "provisioning").rglob("*.yaml"):
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["apiVersion"] == 1


# --- Helm chart ------------------------------------------------------------------------------------------


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "sf-forwarder"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])


def test_chart_values_config_is_valid(tmp_path: Path) -> None:
    document = _values()["config"]
    secrets = _stand_in_secrets(tmp_path, document, SECRETS_DIR)
    config = _validate(document, {SECRETS_DIR: secrets}, "values.yaml config")
    assert config.server.listen.endswith(f":{_values()['service']['port']}")
    assert str(config.state.path).startswith("/var/lib/sf-forwarder/")


def _value_paths(node: Any, prefix: str = "") -> set[str]:
    paths = {prefix} if prefix else set()
    if isinstance(node, dict):
        for key, value in node.items():
            paths |= _value_paths(value, f"{prefix}.{key}" if prefix else str(key))
    return paths


@pytest.mark.parametrize("template", sorted((CHART / "templates").iterdir()), ids=lambda p: p.name)
def test_chart_templates_use_only_defined_values(template: Path) -> None:
    defined = _value_paths(_values())
    text = template.read_text(encoding="utf-8")
    assert text.count("{{") == text.count("}}"), "unbalanced template braces"
    used = set(re.findall(r"\.Values\.([A-Za-z0-9_.]+)", text))
    unknown = sorted(u for u in used if u.rstrip(".") not in defined)
    assert not unknown, f"{template.name} uses values not in values.yaml: {unknown}"


def test_chart_deployment_is_single_writer_and_hardened() -> None:
    deployment = (CHART / "templates" / "deployment.yaml").read_text(encoding="utf-8")
    assert "replicas: 1\n" in deployment
    assert "type: Recreate" in deployment
    for probe in ("path: /healthz", "path: /readyz"):
        assert probe in deployment
    values = _values()
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["podSecurityContext"]["runAsUser"] == 10001
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    assert values["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert values["securityContext"]["allowPrivilegeEscalation"] is False
    assert values["terminationGracePeriodSeconds"] >= 30  # the daemon drains for up to 20 s


# --- plain Kubernetes manifests --------------------------------------------------------------------------


def _manifests() -> dict[str, dict[str, Any]]:
    docs = _load_all(DEPLOY / "kubernetes" / "sf-forwarder.yaml")
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def test_kubernetes_manifests_parse_and_reference_each_other() -> None:
    manifests = _manifests()
    assert set(manifests) == {
        "ConfigMap/sf-forwarder",
        "ConfigMap/sf-forwarder-rules",
        "PersistentVolumeClaim/sf-forwarder-state",
        "Service/sf-forwarder",
        "Deployment/sf-forwarder",
    }
    pod = manifests["Deployment/sf-forwarder"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] in {m.split("/")[1] for m in manifests}
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == "sf-forwarder-state"
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/var/lib/sf-forwarder"] == "state"
    assert mounts["/tmp"] == "tmp"


def test_kubernetes_deployment_is_single_writer_and_hardened() -> None:
    deployment = _manifests()["Deployment/sf-forwarder"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_kubernetes_config_matches_the_chart_defaults(tmp_path: Path) -> None:
    document = yaml.safe_load(_manifests()["ConfigMap/sf-forwarder"]["data"]["config.yaml"])
    secrets = _stand_in_secrets(tmp_path, document, SECRETS_DIR)
    plain = _validate(document, {SECRETS_DIR: secrets}, "kubernetes config")
    chart = _validate(_values()["config"], {SECRETS_DIR: secrets}, "values.yaml config")
    assert plain == chart


# --- Dockerfile ------------------------------------------------------------------------------------------


def _instructions() -> dict[str, list[str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    runtime = text[text.rindex("\nFROM ") :]  # the last stage is the image
    out: dict[str, list[str]] = {}
    for line in runtime.splitlines():
        if line.strip() and not line.startswith(("#", " ")):
            keyword, _, rest = line.partition(" ")
            out.setdefault(keyword, []).append(rest.strip())
    return out


def test_dockerfile_runtime_stage_promises() -> None:
    image = _instructions()
    assert image["USER"] == ["10001:10001"]
    assert image["VOLUME"] == ['["/var/lib/sf-forwarder"]']
    assert image["ENTRYPOINT"] == ['["sf-forwarder"]']
    assert image["CMD"] == ['["run", "-c", "/etc/sf-forwarder/config.yaml"]']
    assert "SF_FORWARDER_HEALTH_URL" in " ".join(image["HEALTHCHECK"])
    assert not any("gcc" in run for run in image["RUN"])  # the compiler stays in the build stage
    assert "/healthz" in " ".join(image["ENV"])


def test_dockerignore_keeps_local_builds_and_state_out() -> None:
    rules = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in rules  # everything excluded, then the build inputs allowed back
    assert "**/*.so" in rules
    assert "!uv.lock" in rules
