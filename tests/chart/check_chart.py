#!/usr/bin/env python3
"""Checks the Helm chart charts/pushgateway-janitor without a cluster.

Lints and renders the chart with Helm's Go SDK (through helm-python-sdk) for every value set in
tests/chart/values/, validates each rendered object against the Kubernetes API schemas of one
Kubernetes version (kubernetes-validate, strict: unknown fields are errors) and each
PushgatewayRetention against the CRD's own schema, then asserts what the chart promises: least
privilege without wildcards, the restricted security context, probes on the declared port, leader
election and a PodDisruptionBudget exactly with more than one replica, the CRD identical to the
generated one, no controller in cronjob mode, the PrometheusRule with the groups of the rule file
(its spec checked by `promtool check rules`), the dashboard ConfigMap holding the repository's
dashboard byte for byte under the sidecar's label, the `helm test` hook validating exactly the
release's policies with the controller's floor, and a values schema that refuses mistakes.

Run: .venv/bin/python tests/chart/check_chart.py   (packages: tests/requirements.txt)
Prints one line per check, then `N passed, N failed`; exits 1 when a check failed.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "pushgateway-janitor"
VALUES_DIR = Path(__file__).resolve().parent / "values"
CRD_FILE = "pushgatewayretentions.pgw-janitor.dev.yaml"
CRD_SOURCE = ROOT / "crds" / CRD_FILE
CRD_COPY = CHART / "files" / CRD_FILE
RULES_FILE = "pgw-janitor-rules.yaml"
RULES_SOURCE = ROOT / "deploy" / "prometheus" / RULES_FILE
DASHBOARD_FILE = "pgw-janitor-dashboard.json"
DASHBOARD_SOURCE = ROOT / "deploy" / "grafana" / DASHBOARD_FILE

KUBE_VERSION = "1.33.0"
RELEASE = "pgw-janitor"
NAMESPACE = "monitoring"
USER = 65532
METRICS_PORT = "http-metrics"
# Kinds kubernetes-validate has no schema for. PushgatewayRetention is checked against our CRD.
# The PrometheusRule is checked by structure against the rule file and by promtool.
NO_SCHEMA = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
RBAC_ROLE_KINDS = {"Role", "ClusterRole"}
RBAC_KINDS = RBAC_ROLE_KINDS | {"RoleBinding", "ClusterRoleBinding"}
LEADER_FLAG = "--leader-election"

Doc = dict[str, Any]


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, fn: Callable[[], None]) -> None:
        """Runs `fn`; an AssertionError (or any error) fails the check with its message."""
        try:
            fn()
        except AssertionError as e:
            self.failed += 1
            print(f"FAIL {name}: {e}")
        except Exception as e:  # a crash in a check is a failure of that check, not of the run
            self.failed += 1
            detail = traceback.format_exception_only(type(e), e)[-1].strip()
            print(f"FAIL {name}: {detail}")
        else:
            self.passed += 1
            print(f"ok   {name}")


# --- rendering -------------------------------------------------------------------------------


def load_values(path: Path) -> dict[str, Any]:
    # Parsed the way `helm -f` parses it.
    return helm.values_from_yaml(path.read_text())


def render(chart: helm.Chart, values: dict[str, Any]) -> list[Doc]:
    manifests = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[Doc] = []
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {})
                docs.append(doc)
    return docs


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[Doc], kind: str) -> Doc:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    for d in docs:
        spec = d.get("spec", {})
        pod = {
            "Deployment": lambda: spec["template"]["spec"],
            "StatefulSet": lambda: spec["template"]["spec"],
            "DaemonSet": lambda: spec["template"]["spec"],
            "Job": lambda: spec["template"]["spec"],
            "CronJob": lambda: spec["jobTemplate"]["spec"]["template"]["spec"],
            "Pod": lambda: spec,
        }.get(d["kind"])
        if pod:
            yield f"{d['kind']}/{d['metadata']['name']}", pod()


def containers(pod: Doc) -> list[Doc]:
    return pod.get("initContainers", []) + pod.get("containers", [])


def controller_args(docs: list[Doc]) -> list[str]:
    deployment = one(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container["args"]


# --- validation ------------------------------------------------------------------------------


def strict_crd_schema(schema: Any) -> Any:
    """The CRD schema with unknown fields refused, as the API server's strict field validation
    (kubectl's default) refuses them, so a typo in a policy fails here rather than being pruned."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # The API server checks these of every object, not the CRD schema (which may leave them out).
    props = schema.setdefault("properties", {})
    props["metadata"] = {"type": "object"}
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    return schema


def crd_validator(crd: Doc, api_version: str) -> jsonschema.protocols.Validator:
    version = api_version.split("/", 1)[1]
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return jsonschema.Draft4Validator(strict_crd_schema(served["schema"]["openAPIV3Schema"]))


def validate(doc: Doc, crd: Doc) -> str:
    """Validates one object; returns what it was validated against, raises AssertionError."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    name = f"{doc.get('kind')}/{doc['metadata'].get('name')}"
    if key in NO_SCHEMA:
        return "skipped (no schema)"
    if doc["kind"] == crd["spec"]["names"]["kind"]:
        assert doc["apiVersion"].split("/")[0] == crd["spec"]["group"], f"{name}: wrong group"
        errors = sorted(crd_validator(crd, doc["apiVersion"]).iter_errors(doc), key=str)
        assert not errors, f"{name}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
        )
        return "the CRD schema"
    try:
        used = kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        raise AssertionError(f"{name}: {'/'.join(map(str, e.absolute_path))}: {e.message}") from e
    except kubernetes_validate.SchemaNotFoundError as e:
        raise AssertionError(f"{name}: {e.message}") from e
    assert used == ".".join(KUBE_VERSION.split(".")[:2]), f"{name}: validated against {used}"
    return f"Kubernetes {used} strict"


# --- assertions shared by every value set ----------------------------------------------------


def assert_no_wildcards(docs: list[Doc]) -> None:
    for d in of_kind(docs, "Role") + of_kind(docs, "ClusterRole"):
        assert d.get("rules"), f"{d['kind']}/{d['metadata']['name']} has no rules"
        for rule in d["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                for item in rule.get(field, []):
                    assert "*" not in item, f"{d['kind']}/{d['metadata']['name']}: {field} {item!r}"


def assert_restricted(docs: list[Doc]) -> None:
    pods = list(pod_specs(docs))
    for where, pod in pods:
        psc = pod.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot"
        assert psc.get("runAsUser") == USER, f"{where}: pod runAsUser {psc.get('runAsUser')}"
        assert psc.get("seccompProfile") == {"type": "RuntimeDefault"}, f"{where}: pod seccompProfile"
        for c in containers(pod):
            sc = c.get("securityContext", {})
            at = f"{where} container {c['name']}"
            assert sc.get("runAsNonRoot") is True, f"{at}: runAsNonRoot"
            assert sc.get("runAsUser") == USER, f"{at}: runAsUser {sc.get('runAsUser')}"
            assert sc.get("readOnlyRootFilesystem") is True, f"{at}: readOnlyRootFilesystem"
            assert sc.get("allowPrivilegeEscalation") is False, f"{at}: allowPrivilegeEscalation"
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{at}: capabilities.drop"
            assert not sc.get("capabilities", {}).get("add"), f"{at}: capabilities.add"
            assert sc.get("seccompProfile") == {"type": "RuntimeDefault"}, f"{at}: seccompProfile"
            assert not sc.get("privileged"), f"{at}: privileged"


def assert_probes(docs: list[Doc]) -> None:
    for where, pod in pod_specs(docs):
        for c in containers(pod):
            declared = {p.get("name") for p in c.get("ports", [])}
            for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
                if probe not in c:
                    continue
                get = c[probe].get("httpGet", {})
                assert get.get("path") == path, f"{where}: {probe} path {get.get('path')!r}"
                assert get.get("port") == METRICS_PORT, f"{where}: {probe} port {get.get('port')!r}"
                assert get["port"] in declared, f"{where}: {probe} port not declared by {c['name']}"
    for deployment in of_kind(docs, "Deployment"):
        (c,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "livenessProbe" in c and "readinessProbe" in c, "the controller has both probes"
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports.get(METRICS_PORT) == 8080, f"container ports {ports}"
        assert "--listen=0.0.0.0:8080" in c["args"], "--listen matches the container port"


def assert_leader_election_consistent(docs: list[Doc]) -> None:
    """Leader election, the Lease RBAC and the PDB come together, and only with > 1 replica."""
    deployments = of_kind(docs, "Deployment")
    replicas = deployments[0]["spec"]["replicas"] if deployments else 0
    electing = bool(deployments) and LEADER_FLAG in controller_args(docs)
    lease_rules = [
        r
        for d in docs
        if d["kind"] in RBAC_ROLE_KINDS
        for r in d["rules"]
        if "leases" in r.get("resources", [])
    ]
    pdbs = of_kind(docs, "PodDisruptionBudget")
    assert electing == (replicas > 1), f"{LEADER_FLAG} is {electing} with {replicas} replicas"
    assert bool(pdbs) == (replicas > 1), f"{len(pdbs)} PodDisruptionBudget with {replicas} replicas"
    assert bool(lease_rules) == electing, f"Lease RBAC {bool(lease_rules)}, election {electing}"


def assert_crd(docs: list[Doc]) -> None:
    crd = one(docs, "CustomResourceDefinition")
    generated = yaml.safe_load(CRD_SOURCE.read_text())
    rendered = copy.deepcopy(crd)
    meta = rendered["metadata"]
    assert meta.get("annotations", {}).get("helm.sh/resource-policy") == "keep", "kept on uninstall"
    # What the chart adds: its labels and the keep annotation. The rest must be the generated CRD.
    for added in ("labels", "annotations"):
        extra = {k: v for k, v in meta.pop(added, {}).items()}
        original = generated["metadata"].get(added, {})
        for k, v in original.items():
            assert extra.get(k) == v, f"metadata.{added}.{k} changed"
        if original:
            meta[added] = original
    assert rendered == generated, "the rendered CRD differs from crds/" + CRD_FILE


# --- the value sets --------------------------------------------------------------------------


def expect_defaults(docs: list[Doc]) -> None:
    assert_no_allow_flags_by_default(docs)
    args = controller_args(docs)
    assert args[0] == "controller", f"args start with {args[0]!r}"
    assert "--log-format=json" in args and "--log-level=info" in args, "log flags"
    assert "--min-ttl=1m" in args, "--min-ttl"
    assert not [a for a in args if a.startswith("--namespace")], "no --namespace: all namespaces"
    c = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in c["env"]}
    assert env.get("POD_NAME") == "metadata.name", "POD_NAME from the downward API"
    assert env.get("POD_NAMESPACE") == "metadata.namespace", "POD_NAMESPACE from the downward API"
    assert c["image"].endswith(":0.1.0"), f"image tag defaults to appVersion: {c['image']}"
    role = one(docs, "ClusterRole")
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"], "binding refers to the role"
    sa = one(docs, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}
    ], f"subjects {binding['subjects']}"
    assert not of_kind(docs, "Role") and not of_kind(docs, "RoleBinding"), "no namespaced Role"
    grants = {
        (g, res, verb)
        for r in role["rules"]
        for g in r["apiGroups"]
        for res in r["resources"]
        for verb in r["verbs"]
    }
    want = {
        ("pgw-janitor.dev", "pushgatewayretentions", v) for v in ("get", "list", "watch")
    } | {("pgw-janitor.dev", "pushgatewayretentions/status", v) for v in ("get", "patch", "update")} | {
        ("events.k8s.io", "events", v) for v in ("create", "patch")
    } | {("discovery.k8s.io", "endpointslices", v) for v in ("list", "watch")} | {("", "secrets", "get")}
    assert grants == want, f"extra {sorted(grants - want)}, missing {sorted(want - grants)}"
    svc = one(docs, "Service")
    assert [p["name"] for p in svc["spec"]["ports"]] == [METRICS_PORT], "Service port name"
    assert one(docs, "Deployment")["spec"]["strategy"]["type"] == "Recreate", "one pod at a time"
    assert not of_kind(docs, "ServiceMonitor") and not of_kind(docs, "NetworkPolicy"), "opt-in"
    assert not of_kind(docs, "PrometheusRule") and not of_kind(not_hooks(docs), "ConfigMap"), "alerts, dashboard opt-in"
    assert not of_kind(docs, "CronJob"), "no CronJob in controller mode"
    assert [p["name"] for p in test_hook_policies(docs)] == [], "the test hook validates no policy"


def expect_namespaced(docs: list[Doc]) -> None:
    assert not of_kind(docs, "ClusterRole") and not of_kind(docs, "ClusterRoleBinding"), "no cluster RBAC"
    roles = of_kind(docs, "Role")
    bindings = of_kind(docs, "RoleBinding")
    watched = ["team-a", "team-b"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == watched, "a Role in each watched namespace"
    assert sorted(b["metadata"]["namespace"] for b in bindings) == watched, "a RoleBinding in each"
    for binding in bindings:
        assert binding["subjects"][0]["namespace"] == NAMESPACE, "binds the release's ServiceAccount"
    args = controller_args(docs)
    for ns in watched:
        assert f"--namespace={ns}" in args, f"--namespace={ns}"
    for role in roles:
        (secrets,) = [r for r in role["rules"] if "secrets" in r["resources"]]
        assert secrets["verbs"] == ["get"], f"secrets verbs {secrets['verbs']}"
        assert secrets.get("resourceNames") == ["pushgateway-basic-auth"], "secrets limited by name"


def expect_cronjob(docs: list[Doc]) -> None:
    assert not of_kind(docs, "Deployment"), "no Deployment in cronjob mode"
    assert not of_kind(docs, "Service"), "no Service in cronjob mode"
    assert not [d for d in docs if d["kind"] in RBAC_KINDS], "no RBAC in cronjob mode"
    one(docs, "ServiceAccount")
    cron = one(docs, "CronJob")["spec"]
    assert cron["concurrencyPolicy"] == "Forbid", "concurrencyPolicy Forbid"
    assert cron["schedule"] == "30 2 * * *" and cron["timeZone"] == "Europe/Berlin", "schedule"
    assert "successfulJobsHistoryLimit" in cron, "successfulJobsHistoryLimit"
    assert cron["jobTemplate"]["spec"]["backoffLimit"] == 1, "backoffLimit"
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False, "a sweep gets no API token"
    assert pod["restartPolicy"] == "Never", "restartPolicy Never"
    (c,) = pod["containers"]
    assert c["args"][0] == "sweep", f"args start with {c['args'][0]!r}"
    for a in ("--prometheus=http://prometheus.monitoring:9090", "--job=pushgateway", "--action=wipe"):
        assert a in c["args"], f"{a} passed to sweep"


def expect_monitoring(docs: list[Doc]) -> None:
    sm = one(docs, "ServiceMonitor")
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == METRICS_PORT and endpoint["path"] == "/metrics", "scrapes /metrics"
    assert endpoint["interval"] == "1m", "interval"
    assert sm["metadata"]["labels"].get("release") == "prometheus", "extra labels"
    svc = one(docs, "Service")
    assert all(svc["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items()), \
        "ServiceMonitor selects the Service"
    np = one(docs, "NetworkPolicy")["spec"]
    assert set(np["policyTypes"]) == {"Ingress", "Egress"}, "both directions fenced"
    (ingress,) = np["ingress"]
    assert ingress["ports"] == [{"port": METRICS_PORT, "protocol": "TCP"}], "ingress to metrics only"
    assert ingress["from"], "metricsFrom applied"
    egress = np["egress"]

    def ports(rule: Doc) -> set[tuple[Any, str]]:
        return {(p["port"], p["protocol"]) for p in rule.get("ports", [])}

    dns = [r for r in egress if ports(r) == {(53, "UDP"), (53, "TCP")}]
    assert dns and dns[0]["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }, "DNS to kube-system, UDP and TCP"
    api = [r for r in egress if ports(r) == {(443, "TCP"), (6443, "TCP")}]
    assert api and [p["ipBlock"]["cidr"] for p in api[0]["to"]] == ["10.96.0.1/32", "172.18.0.2/32"], \
        "API server CIDRs and ports"
    for port, app in ((9090, "prometheus"), (9091, "prometheus-pushgateway")):
        (rule,) = [r for r in egress if ports(r) == {(port, "TCP")}]
        assert rule["to"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": app}, app


def expect_shared_cluster(docs: list[Doc]) -> None:
    args = controller_args(docs)
    for a in ("--allow-cidr=10.42.0.0/16", "--allow-host=prometheus-operated.monitoring.svc",
              r"--allow-host-regex=[a-z0-9-]+\.prometheus-pushgateway\.monitoring\.svc(\.cluster\.local)?",
              "--allow-service-namespace=monitoring"):
        assert a in args, f"{a} not in {args}"
    np = one(docs, "NetworkPolicy")["spec"]
    assert "Egress" in np["policyTypes"], "egress fenced"
    for rule in np["egress"]:
        assert rule.get("to"), f"an egress rule open to any destination: {rule}"
        for peer in rule["to"]:
            assert peer.get("ipBlock", {}).get("cidr") != "0.0.0.0/0", f"egress to anywhere: {rule}"
    ports = {p["port"] for r in np["egress"] for p in r.get("ports", [])}
    assert {9090, 9091} <= ports, f"egress ports {ports}"
    for rule in np["egress"]:
        if {p["port"] for p in rule["ports"]} & {9090, 9091}:
            (peer,) = rule["to"]
            assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}, \
                f"egress to the gateways' namespace only: {rule}"


def assert_no_allow_flags_by_default(docs: list[Doc]) -> None:
    args = controller_args(docs)
    assert not [a for a in args if a.startswith("--allow-")], f"no list unless set: {args}"


def promtool_check(spec: Doc) -> None:
    """`promtool check rules` on a PrometheusRule's spec, which is a rule file's content."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found (Debian package prometheus)"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(spec, f)
        f.flush()
        out = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"promtool check rules: {out.stdout}{out.stderr}"


def expect_alerts_dashboard(docs: list[Doc]) -> None:
    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1", rule["apiVersion"]
    assert rule["metadata"]["namespace"] == NAMESPACE, "in the release namespace"
    assert rule["metadata"]["labels"].get("release") == "prometheus", "prometheusRule.labels"
    assert set(rule) == {"apiVersion", "kind", "metadata", "spec"} and set(rule["spec"]) == {"groups"}, \
        f"PrometheusRule fields {sorted(rule)} {sorted(rule['spec'])}"
    source = yaml.safe_load(RULES_SOURCE.read_text())
    assert rule["spec"]["groups"] == source["groups"], f"spec.groups differ from deploy/prometheus/{RULES_FILE}"
    for group in rule["spec"]["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"}, f"group fields {sorted(group)}"
        for r in group["rules"]:
            assert ("alert" in r) != ("record" in r) and isinstance(r.get("expr"), str), f"rule {r}"
            assert set(r) <= {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}, \
                f"rule fields {sorted(r)}"
    promtool_check(rule["spec"])
    cm = one(not_hooks(docs), "ConfigMap")
    assert cm["metadata"]["namespace"] == NAMESPACE, "in the release namespace by default"
    assert cm["metadata"]["labels"].get("grafana_dashboard") == "1", "the sidecar's default label"
    assert cm["metadata"].get("annotations") == {"grafana_folder": "Pushgateway"}, "annotations"
    assert cm["data"] == {DASHBOARD_FILE: DASHBOARD_SOURCE.read_text()}, \
        f"the ConfigMap does not hold deploy/grafana/{DASHBOARD_FILE} as is"


def not_hooks(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if "helm.sh/hook" not in d["metadata"].get("annotations", {})]


def test_hook_policies(docs: list[Doc]) -> list[Doc]:
    """The `helm test` hook: a pod of the chart's image running `validate --min-ttl=<minTtl>` over
    the file of a ConfigMap hook made before it. Returns the policies that file holds."""
    tests = [d for d in docs if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    assert sorted(d["kind"] for d in tests) == ["ConfigMap", "Pod"], f"test hooks {[d['kind'] for d in tests]}"
    cm, pod = sorted(tests, key=lambda d: d["kind"])
    assert int(cm["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        pod["metadata"]["annotations"].get("helm.sh/hook-weight", "0")), "the ConfigMap comes before the pod"
    (c,) = pod["spec"]["containers"]
    deployment_or_cron = (of_kind(docs, "Deployment") + of_kind(docs, "CronJob"))[0]
    image = next(x["image"] for _, p in pod_specs([deployment_or_cron]) for x in containers(p))
    assert c["image"] == image, f"test image {c['image']}, chart image {image}"
    assert c["args"][0] == "validate" and c["args"][-1] == "/policies/policies.yaml", c["args"]
    min_ttl = [a for a in c["args"] if a.startswith("--min-ttl=")]
    assert len(min_ttl) == 1, f"one --min-ttl: {c['args']}"
    assert pod["spec"]["automountServiceAccountToken"] is False, "the test needs no API token"
    assert pod["spec"]["restartPolicy"] == "Never", "a test pod runs once"
    for selecting in of_kind(docs, "Deployment") + of_kind(docs, "PodDisruptionBudget"):
        sel = selecting["spec"]["selector"]["matchLabels"].items()
        assert not sel <= pod["metadata"]["labels"].items(), f"{selecting['kind']} selects the test pod"
    for svc in of_kind(docs, "Service"):
        assert not svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items(), "the Service selects it"
    (vol,) = pod["spec"]["volumes"]
    assert vol["configMap"]["name"] == cm["metadata"]["name"], "the pod mounts the ConfigMap"
    return [d for d in yaml.safe_load_all(cm["data"]["policies.yaml"]) if d]


def expect_policies(docs: list[Doc], values: dict[str, Any]) -> None:
    tested = test_hook_policies(docs)
    assert [(p["metadata"]["name"], p["metadata"]["namespace"], p["spec"]) for p in tested] == [
        (p["name"], p.get("namespace", NAMESPACE), p["spec"]) for p in values["policies"]
    ], "helm test validates every policy of the release, as given"
    policies = of_kind(docs, "PushgatewayRetention")
    assert len(policies) == len(values["policies"]), f"{len(policies)} policies rendered"
    for given, got in zip(values["policies"], policies):
        assert got["apiVersion"] == "pgw-janitor.dev/v1alpha1", got["apiVersion"]
        assert got["metadata"]["name"] == given["name"], "name"
        assert got["metadata"]["namespace"] == given.get("namespace", NAMESPACE), "namespace"
        assert got["spec"] == given["spec"], f"{given['name']}: spec as given"
        for k, v in given.get("labels", {}).items():
            assert got["metadata"]["labels"].get(k) == v, f"{given['name']}: label {k}"
        hook = got["metadata"].get("annotations", {}).get("helm.sh/hook", "")
        assert hook == "post-install,post-upgrade", f"{given['name']}: installed after the CRD"


def expect_ha(docs: list[Doc]) -> None:
    args = controller_args(docs)
    for a in (LEADER_FLAG, "--lease-namespace=" + NAMESPACE, "--lease-duration=20s"):
        assert a in args, f"{a} in {args}"
    lease_name = [a.split("=", 1)[1] for a in args if a.startswith("--lease-name=")]
    assert lease_name == [f"{RELEASE}-pushgateway-janitor"], f"lease name {lease_name}"
    roles = [r for r in of_kind(docs, "Role") if any("leases" in x["resources"] for x in r["rules"])]
    assert len(roles) == 1 and roles[0]["metadata"]["namespace"] == NAMESPACE, "Lease Role in the release namespace"
    verbs = {v for rule in roles[0]["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "create", "update", "patch"}, f"Lease verbs {sorted(verbs)}"
    assert all(g == ["coordination.k8s.io"] for g in (r["apiGroups"] for r in roles[0]["rules"])), "group"
    bindings = [b for b in of_kind(docs, "RoleBinding") if b["roleRef"]["name"] == roles[0]["metadata"]["name"]]
    assert len(bindings) == 1, "the Lease Role is bound"
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert "strategy" not in one(docs, "Deployment")["spec"], "rolling update with a Lease"
    assert one(docs, "ClusterRole"), "policy RBAC still cluster-wide"


EXPECT: dict[str, Callable[[list[Doc], dict[str, Any]], None]] = {
    "defaults": lambda docs, _: expect_defaults(docs),
    "namespaced": lambda docs, _: expect_namespaced(docs),
    "cronjob": lambda docs, _: expect_cronjob(docs),
    "monitoring": lambda docs, _: expect_monitoring(docs),
    "policies": expect_policies,
    "ha": lambda docs, _: expect_ha(docs),
    "alerts-dashboard": lambda docs, _: expect_alerts_dashboard(docs),
    "shared-cluster": lambda docs, _: expect_shared_cluster(docs),
}

# Values the schema must refuse: a render with them must fail on the values, naming the key.
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("replicaCount as a string", {"replicaCount": "two"}, "replicaCount"),
    ("logFormat xml", {"logFormat": "xml"}, "logFormat"),
    ("an unknown top-level key", {"replicas": 2}, "replicas"),
    ("an unknown nested key", {"serviceMonitor": {"enable": True}}, "enable"),
    ("mode daemon", {"mode": "daemon"}, "mode"),
    ("a watchNamespaces entry that is no namespace name", {"watchNamespaces": ["Team A"]}, "watchNamespaces"),
    ("minTtl without a unit", {"minTtl": "60"}, "minTtl"),
    ("a policy without a spec", {"policies": [{"name": "p"}]}, "spec"),
    ("an unknown prometheusRule key", {"prometheusRule": {"enable": True}}, "enable"),
    ("a dashboard label value that is a number", {"grafanaDashboard": {"labelValue": 1}}, "labelValue"),
    ("a dashboard label key with a space", {"grafanaDashboard": {"label": "grafana dashboard"}}, "label"),
    ("an allowed CIDR that is no CIDR", {"allowedTargets": {"cidrs": ["10.0.0.1"]}}, "cidrs"),
    ("an allowed host with a scheme", {"allowedTargets": {"hosts": ["http://pgw"]}}, "hosts"),
]

# Values the schema accepts but a template refuses, with a message.
FAILED_RENDERS: list[tuple[str, dict[str, Any], str]] = [
    ("cronjob mode without args", {"mode": "cronjob"}, "cronjob.args"),
    (
        "a policy outside the watched namespace",
        {"watchNamespaces": ["team-a"], "policies": [{"name": "p", "spec": {"ttl": "1h"}}]},
        "does not watch",
    ),
]


def main() -> int:
    checks = Checks()
    print(f"helm-python-sdk {helm.__version__} (Helm {helm.helm_sdk_version()}), "
          f"kubernetes-validate {kubernetes_validate.__version__}, Kubernetes {KUBE_VERSION}")

    def crd_copy_identical() -> None:
        assert CRD_COPY.read_bytes() == CRD_SOURCE.read_bytes(), (
            f"charts/pushgateway-janitor/files/{CRD_FILE} differs from crds/{CRD_FILE}; "
            f"refresh it: cp crds/{CRD_FILE} charts/pushgateway-janitor/files/"
        )

    checks.check(f"chart: files/{CRD_FILE} is a byte-identical copy of crds/{CRD_FILE}", crd_copy_identical)

    for source in (RULES_SOURCE, DASHBOARD_SOURCE):
        def copy_identical(source: Path = source) -> None:
            copy = CHART / "files" / source.name
            assert copy.read_bytes() == source.read_bytes(), (
                f"charts/pushgateway-janitor/files/{source.name} differs from {source.relative_to(ROOT)}; "
                f"refresh it: cp {source.relative_to(ROOT)} charts/pushgateway-janitor/files/"
            )

        checks.check(f"chart: files/{source.name} is a byte-identical copy of {source.relative_to(ROOT)}",
                     copy_identical)

    crd = yaml.safe_load(CRD_SOURCE.read_text())
    value_files = sorted(VALUES_DIR.glob("*.yaml"))
    names = {f.stem for f in value_files}
    checks.check(
        "chart: every value set has its expectations",
        lambda: (_ for _ in ()).throw(AssertionError(f"{sorted(names ^ set(EXPECT))}"))
        if names != set(EXPECT) else None,
    )

    with helm.Chart.load(CHART) as chart:
        for path in value_files:
            set_name = path.stem
            values = load_values(path)

            def lint() -> None:
                report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE,
                                   kube_version="v" + KUBE_VERSION)
                problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
                assert not problems, str(problems)

            checks.check(f"{set_name}: helm lint --strict", lint)

            docs: list[Doc] = []

            def do_render() -> None:
                docs.extend(render(chart, values))
                assert docs, "nothing rendered"

            checks.check(f"{set_name}: renders", do_render)
            if not docs:
                continue

            def validate_all() -> None:
                against = {validate(d, crd) for d in docs}
                assert against, "no objects"

            checks.check(f"{set_name}: {len(docs)} objects valid (Kubernetes {KUBE_VERSION} strict; "
                         "policies against the CRD)", validate_all)
            checks.check(f"{set_name}: no wildcard in any RBAC rule", lambda: assert_no_wildcards(docs))
            checks.check(f"{set_name}: restricted securityContext on every pod and container",
                         lambda: assert_restricted(docs))
            checks.check(f"{set_name}: probes /livez and /readyz on the declared port {METRICS_PORT}",
                         lambda: assert_probes(docs))
            checks.check(f"{set_name}: leader election, Lease RBAC and PDB exactly with > 1 replica",
                         lambda: assert_leader_election_consistent(docs))
            checks.check(f"{set_name}: the CRD equals crds/{CRD_FILE}, kept on uninstall",
                         lambda: assert_crd(docs))
            if set_name in EXPECT:
                checks.check(f"{set_name}: what this value set is for",
                             lambda: EXPECT[set_name](docs, values))

        def no_crd() -> None:
            docs = render(chart, {"crds": {"install": False}})
            assert not of_kind(docs, "CustomResourceDefinition"), "crds.install false renders no CRD"
            docs = render(chart, {"crds": {"keep": False}})
            crd_doc = one(docs, "CustomResourceDefinition")
            assert "helm.sh/resource-policy" not in crd_doc["metadata"].get("annotations", {}), "keep off"

        checks.check("crds.install false: no CRD; crds.keep false: no keep annotation", no_crd)

        def dashboard_label_and_namespace() -> None:
            docs = render(chart, {"grafanaDashboard": {"enabled": True, "label": "example.com/dashboard",
                                                       "labelValue": "pgw", "namespace": "grafana"}})
            cm = one(not_hooks(docs), "ConfigMap")
            assert cm["metadata"]["labels"].get("example.com/dashboard") == "pgw", cm["metadata"]["labels"]
            assert "grafana_dashboard" not in cm["metadata"]["labels"], "the default label replaced"
            assert cm["metadata"]["namespace"] == "grafana", "grafanaDashboard.namespace"
            validate(cm, crd)
            assert not of_kind(docs, "PrometheusRule"), "rules stay off"

        checks.check("grafanaDashboard: label key, value and namespace configurable", dashboard_label_and_namespace)

        def test_hook_off_and_min_ttl() -> None:
            docs = render(chart, {"tests": {"enabled": False}})
            assert not [d for d in docs if "helm.sh/hook" in d["metadata"].get("annotations", {})], "no hook"
            docs = render(chart, {"minTtl": "5m", "mode": "cronjob", "cronjob": {"args": ["--gateway=http://g:9091"]}})
            assert test_hook_policies(docs) == [], "no policies"
            pod = one(of_kind(docs, "Pod"), "Pod")
            assert "--min-ttl=5m" in pod["spec"]["containers"][0]["args"], "the controller's floor"

        checks.check("helm test hook: off with tests.enabled false; validates with minTtl, in cronjob mode too",
                     test_hook_off_and_min_ttl)

        def typo_policy_refused() -> None:
            bad = {"apiVersion": "pgw-janitor.dev/v1alpha1", "kind": "PushgatewayRetention",
                   "metadata": {"name": "typo"}, "spec": {"prometheus": {"url": "http://p:9090", "job": "pgw"},
                                                          "tll": "6h"}}
            try:
                validate(bad, crd)
            except AssertionError as e:
                assert "tll" in str(e), str(e)
                return
            raise AssertionError("a policy with an unknown field passed the CRD schema")

        checks.check("the CRD schema check refuses a policy with a mistyped field", typo_policy_refused)

        for what, values, key in REFUSED:
            def refused(values: dict[str, Any] = values, key: str = key) -> None:
                try:
                    render(chart, values)
                except helm.HelmValuesError as e:
                    assert key in str(e), f"the error does not name {key!r}: {e}"
                    return
                raise AssertionError(f"rendered with {values}")

            checks.check(f"values.schema.json refuses {what}", refused)

        for what, values, message in FAILED_RENDERS:
            def fails(values: dict[str, Any] = values, message: str = message) -> None:
                try:
                    render(chart, values)
                except helm.HelmError as e:
                    assert message in str(e), f"the error does not say {message!r}: {e}"
                    return
                raise AssertionError(f"rendered with {values}")

            checks.check(f"the chart refuses {what}", fails)

    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
