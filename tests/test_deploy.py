"""The deployment kit (deploy/, the compose lb profile), checked offline.

- every Kubernetes manifest against the API schemas of named releases, in
  strict mode (kubernetes-validate ships the schemas); the two custom
  resources field by field, and against their CRDs' schemas when
  CRD_SCHEMA_DIR holds them;
- the manifests against what the image and the service really use: the
  Dockerfile's user, port and paths, service.config's variables, the routes of
  the app, gunicorn's timeouts;
- nginx's config against the service's limits and compose's services;
- yamllint, promtool (rules and their unit tests), and every alert and
  dashboard query against the metrics the service exports.
"""
import ast
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from service import create_app
from service.config import Config
from tests.helpers import GOOD, STROKE, write_version
from tests.replicas import NGINX_CONF, alert_queries, dashboard_queries, nginx_config, upstream_servers

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate not installed: pip install -e '.[test]'")

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "kubernetes"
PROMETHEUS = REPO / "deploy" / "prometheus"
# The oldest Kubernetes release the manifests claim to support, and a recent one.
KUBERNETES_RELEASES = ["1.31.0", "1.35.0"]
CUSTOM_KINDS = {"ServiceMonitor", "InferenceService"}
# Environment variables read by something other than service.config, and by what.
OTHER_ENV = {
    "MNIST_DIR": "trainer/__main__.py",        # the trainer's data directory
    "STORE": "deploy/kubernetes/store/seed-job.yaml",  # the seed Job's own script
    "PROTOCOL": None,                          # KServe: the protocol a custom predictor speaks
    "STORAGE_URI": None,                       # KServe: the model store to mount at /mnt/models
}
KSERVE_MODEL_DIR = "/mnt/models"  # where KServe mounts a pvc:// STORAGE_URI


# -- reading the files --------------------------------------------------------------
def load_all(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomize(directory):
    """What ``kubectl kustomize directory`` emits, for the part of kustomize these files use:
    resources (files and directories), namespace, images. Anything else fails here."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(spec) <= {"apiVersion", "kind", "resources", "namespace", "images"}, set(spec)
    out = []
    for entry in spec["resources"]:
        path = (directory / entry).resolve()
        out += kustomize(path) if path.is_dir() else [dict(r, _file=path) for r in load_all(path)]
    for resource in out:
        if "namespace" in spec and resource["kind"] != "Namespace":
            resource["metadata"]["namespace"] = spec["namespace"]
        for image in spec.get("images", []):
            for container in containers(resource):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return out


def containers(node):
    """Every container (and init container) anywhere in a resource."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from value
            else:
                yield from containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from containers(item)


def strip(resource):
    return {k: v for k, v in resource.items() if k != "_file"}


BASE = kustomize(K8S)
KSERVE = kustomize(K8S / "kserve")
MONITORING = [dict(r, _file=p) for p in sorted((K8S / "monitoring").glob("*.yaml")) for r in load_all(p)]
EVERY = BASE + [r for r in KSERVE if r["kind"] == "InferenceService"] + MONITORING


def one(kind, resources=BASE, name=None):
    found = [r for r in resources if r["kind"] == kind and name in (None, r["metadata"]["name"])]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def pod_spec(resource):
    kind, spec = resource["kind"], resource["spec"]
    if kind == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if kind in ("Deployment", "Job"):
        return spec["template"]["spec"]
    if kind == "InferenceService":
        return spec["predictor"]
    raise KeyError(kind)


WORKLOADS = [r for r in EVERY if r["kind"] in ("Deployment", "Job", "CronJob", "InferenceService")]
SERVERS = [one("Deployment"), one("InferenceService", KSERVE)]


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def mount_for(spec, container, path):
    """``(volumeMount, volume)`` of the mount holding ``path`` (the longest mount path above it)."""
    mounts = [m for m in container.get("volumeMounts", []) if (path + "/").startswith(m["mountPath"].rstrip("/") + "/")]
    assert mounts, f"{container['name']}: nothing is mounted at {path}"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    return mount, volume


def dockerfile():
    """The final stage of the Dockerfile: its user, env, exposed ports, copies and command."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    final = text.split("\nFROM ")[-1]
    env = {}
    for line in re.findall(r"^ENV (.*)$", final, re.M):
        env.update(re.findall(r"(\w+)=(\S+)", line))
    return {
        "uid": int(re.search(r"useradd [^\n]*--uid (\d+)", final).group(1)),
        "user": re.search(r"^USER (\S+)", final, re.M).group(1),
        "env": env,
        "expose": [int(p) for p in re.findall(r"^EXPOSE (\d+)", final, re.M)],
        "copies": dict((src, dst) for src, dst in re.findall(r"^COPY (?!--)(\S+) (\S+)\s*$", final, re.M)),
        "cmd": json.loads(re.search(r"^CMD (\[.*\])\s*$", final, re.M).group(1)),
    }


def constants(path):
    """The module-level constants of a Python file, read without running it."""
    tree = ast.parse(path.read_text())
    return {node.targets[0].id: node.value.value for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)}


def gunicorn_settings():
    """service/gunicorn.conf.py's settings (importing it would change this process: malloc, environment)."""
    return constants(REPO / "service" / "gunicorn.conf.py")


def quantity(value):
    """A Kubernetes quantity in bytes or cores: '256Mi' -> 268435456, '500m' -> 0.5."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3, "": 1}
    number, unit = re.fullmatch(r"([\d.]+)(Ki|Mi|Gi|m|)", str(value)).groups()
    return float(number) * units[unit]


def nginx_directive(name, text=None):
    values = re.findall(rf"^\s*{name}\s+([^;]+);", text or NGINX_CONF.read_text(), re.M)
    assert len(values) == 1, (name, values)
    return values[0]


def nginx_size(value):
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit.lower()]


def nginx_seconds(value):
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)?", value).groups()
    return int(number) * {"ms": 1e-3, "s": 1, None: 1, "m": 60}[unit]


def compose():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


# -- schemas --------------------------------------------------------------------------
def test_the_kustomizations_cover_every_manifest():
    rendered = {r["_file"] for r in BASE + KSERVE}
    shipped = {p.resolve() for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert shipped - rendered == {p.resolve() for p in (K8S / "monitoring").glob("*.yaml")}
    names = [(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]) for r in BASE]
    assert len(names) == len(set(names))
    assert {r["metadata"].get("namespace") for r in EVERY if r["kind"] != "Namespace"} == \
        {one("Namespace")["metadata"]["name"]}


@pytest.mark.parametrize("release", KUBERNETES_RELEASES)
@pytest.mark.parametrize("resource", [r for r in EVERY if r["kind"] not in CUSTOM_KINDS],
                         ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_manifest_is_valid_in_strict_mode(resource, release):
    kubernetes_validate.validate(strip(resource), release, strict=True)


@pytest.mark.parametrize("release", KUBERNETES_RELEASES)
def test_the_kserve_predictor_is_a_valid_pod_spec(release):
    """KServe inlines a core PodSpec into the predictor, beside its own scaling fields:
    the PodSpec part is checked against the Kubernetes schema, the rest by name."""
    predictor = copy.deepcopy(one("InferenceService", KSERVE)["spec"]["predictor"])
    kserve_fields = {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "scaleMetricType", "timeout",
                     "containerConcurrency", "canaryTrafficPercent", "logger", "batcher", "labels", "annotations"}
    for name in set(predictor) & kserve_fields:
        del predictor[name]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": predictor}
    kubernetes_validate.validate(pod, release, strict=True)


def test_strict_validation_rejects_a_misspelt_field():
    deployment = copy.deepcopy(strip(one("Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/health"}}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_RELEASES[0], strict=True)


def test_custom_resources_use_only_their_apis_fields():
    """Without their CRDs at hand (see the next test), the fields these files use, as the
    Prometheus Operator's and KServe's API references define them."""
    monitor = one("ServiceMonitor", MONITORING)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) <= {"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels",
                                    "podTargetLabels", "sampleLimit"}
    assert set(monitor["spec"]["selector"]) <= {"matchLabels", "matchExpressions"}
    assert set(monitor["spec"]["namespaceSelector"]) <= {"matchNames", "any"}
    duration = re.compile(r"[0-9]+(ms|s|m|h)")
    for endpoint in monitor["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels",
                                 "relabelings", "metricRelabelings"}
        assert duration.fullmatch(endpoint["interval"]) and duration.fullmatch(endpoint["scrapeTimeout"])
        assert nginx_seconds(endpoint["scrapeTimeout"]) < nginx_seconds(endpoint["interval"])

    isvc = one("InferenceService", KSERVE)
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert set(isvc["spec"]) == {"predictor"}
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] in {"RawDeployment", "Standard", "Serverless", "Knative"}
    assert annotations["serving.kserve.io/autoscalerClass"] in {"hpa", "external", "none", "keda"}
    assert set(annotations) <= {"serving.kserve.io/deploymentMode", "serving.kserve.io/autoscalerClass",
                                "serving.kserve.io/enable-prometheus-scraping", "prometheus.kserve.io/port",
                                "prometheus.kserve.io/path"}
    predictor = isvc["spec"]["predictor"]
    assert predictor["scaleMetric"] in {"cpu", "memory", "concurrency", "rps"}
    assert 1 <= predictor["minReplicas"] <= predictor["maxReplicas"] and 0 < predictor["scaleTarget"] <= 100
    assert [c["name"] for c in predictor["containers"]] == ["kserve-container"]


def crd_schema(kind, api_version):
    """The JSON schema of ``kind`` from a CRD in $CRD_SCHEMA_DIR, made strict (no unknown fields)."""
    directory = os.environ.get("CRD_SCHEMA_DIR")
    if not directory:
        pytest.skip("CRD_SCHEMA_DIR not set: point it at the KServe and Prometheus Operator CRD files "
                    "(docs/deploy.md) to validate the custom resources against their schemas too")
    group, version = api_version.split("/")
    for path in Path(directory).glob("*.y*ml"):
        for crd in load_all(path):
            if crd.get("kind") == "CustomResourceDefinition" and crd["spec"]["group"] == group \
                    and crd["spec"]["names"]["kind"] == kind:
                schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]
                return strict_schema(schema["openAPIV3Schema"])
    pytest.skip(f"no CRD for {kind} in {directory}")


def strict_schema(node):
    """An OpenAPI v3 schema of a CRD as a JSON schema that rejects unknown fields, as
    kubectl's server-side field validation does (the API server would drop them silently)."""
    if isinstance(node, list):
        return [strict_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: strict_schema(v) for k, v in node.items()}
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
        node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if "properties" in node and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        node["additionalProperties"] = False
    return node


@pytest.mark.parametrize("resource", [r for r in EVERY if r["kind"] in CUSTOM_KINDS], ids=lambda r: r["kind"])
def test_custom_resource_matches_its_crd_schema(resource):
    import jsonschema

    schema = crd_schema(resource["kind"], resource["apiVersion"])
    body = strip(resource)
    body["metadata"] = {}  # ObjectMeta is the API server's, not the CRD's, to check
    jsonschema.validate(body, schema)


# -- the manifests against the image and the service -----------------------------------
@pytest.fixture(scope="module")
def app_routes(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_version(root)
    app = create_app({"models_dir": root, "reload_interval": 0, "access_log": False, "log_level": "WARNING"})
    return app, {rule.rule for rule in app.url_map.iter_rules()}


def probes(container):
    return {kind: container[kind] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}


@pytest.mark.parametrize("resource", SERVERS, ids=lambda r: r["kind"])
def test_server_containers_match_the_service_and_image(resource, app_routes, tmp_path):
    app, routes = app_routes
    image = dockerfile()
    spec = pod_spec(resource)
    (container,) = spec["containers"]
    env = env_of(container)
    config_names = {f.upper() for f in Config.__dataclass_fields__}
    assert set(env) - config_names <= set(OTHER_ENV), set(env) - config_names
    cfg = Config.from_env({**image["env"], **env}, models_dir=tmp_path)  # parses as the service would
    assert cfg.model_name == Config().model_name

    # the port: from the environment, or the --port the command passes
    port = cfg.port
    if "--port" in container.get("args", []):
        port = int(container["args"][container["args"].index("--port") + 1])
        assert container["command"] == image["cmd"]
    (declared,) = container["ports"]
    assert declared["containerPort"] == port
    for probe in probes(container).values():
        assert probe["httpGet"]["port"] in (port, declared.get("name"))

    # probes point at the routes that mean ready and alive, and those answer so
    kinds = {kind: probe["httpGet"]["path"] for kind, probe in probes(container).items()}
    assert kinds["readinessProbe"] in {"/health", "/v2/health/ready"}
    assert kinds["livenessProbe"] == kinds["startupProbe"] in {"/health/live", "/v2/health/live"}
    client = app.test_client()
    for path in kinds.values():
        assert path in routes and client.get(path).status_code == 200
    empty = create_app({"models_dir": tmp_path / "empty", "reload_interval": 0, "access_log": False,
                        "log_level": "WARNING"}).test_client()
    assert empty.get(kinds["readinessProbe"]).status_code == 503     # no model: not ready ...
    assert empty.get(kinds["livenessProbe"]).status_code == 200      # ... but alive

    # the model store: the models dir is the read-only shared volume
    if resource["kind"] == "InferenceService":  # KServe mounts the claim named in STORAGE_URI, read-only
        assert env["MODELS_DIR"] == KSERVE_MODEL_DIR
        assert env["STORAGE_URI"] == f"pvc://{one('PersistentVolumeClaim')['metadata']['name']}"
        assert env["PROTOCOL"] == "v2" and resource["metadata"]["name"] == cfg.model_name
        assert "/v2/models/<name>/infer" in routes
    else:
        mount, volume = mount_for(spec, container, env["MODELS_DIR"])
        assert mount["readOnly"] is True and volume["persistentVolumeClaim"]["readOnly"] is True
        assert volume["persistentVolumeClaim"]["claimName"] == one("PersistentVolumeClaim")["metadata"]["name"]

    # the metrics files in RAM, on a writable volume of a read-only root
    mount, volume = mount_for(spec, container, env["PROMETHEUS_MULTIPROC_DIR"])
    assert volume["emptyDir"]["medium"] == "Memory" and not mount.get("readOnly")
    assert env["PROMETHEUS_MULTIPROC_DIR"] == image["env"]["PROMETHEUS_MULTIPROC_DIR"]


@pytest.mark.parametrize("resource", SERVERS, ids=lambda r: r["kind"])
def test_shutdown_and_liveness_fit_gunicorns_timeouts(resource):
    gunicorn = gunicorn_settings()
    spec = pod_spec(resource)
    (container,) = spec["containers"]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    # the pause, then gunicorn's whole graceful timeout, with a few seconds to spare
    needed = pause + gunicorn["graceful_timeout"]
    assert needed < spec["terminationGracePeriodSeconds"] <= needed + 10
    live = container["livenessProbe"]
    # gunicorn replaces a stuck worker (its `timeout`) before the kubelet restarts the pod
    assert live["periodSeconds"] * live["failureThreshold"] > gunicorn["timeout"]
    start = container["startupProbe"]
    assert start["periodSeconds"] * start["failureThreshold"] >= 30


@pytest.mark.parametrize("resource", WORKLOADS, ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_every_pod_runs_as_the_images_user_on_a_read_only_root(resource):
    image = dockerfile()
    spec = pod_spec(resource)
    assert image["user"] == f"{image['uid']}:{image['uid']}"
    security = spec["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == security["runAsGroup"] == image["uid"]
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        assert container["image"] == f"mnist-serving:{project_version()}"
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "capabilities": {"drop": ["ALL"]}}
        requests_, limits = container["resources"]["requests"], container["resources"]["limits"]
        assert quantity(requests_["memory"]) <= quantity(limits["memory"])


def project_version():
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_the_trainer_and_the_seed_write_into_the_store_the_servers_read():
    image = dockerfile()
    pvc = one("PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]

    trainer = one("CronJob")
    assert trainer["spec"]["suspend"] is True  # a template for `kubectl create job --from`, never on its own
    spec = pod_spec(trainer)
    (container,) = spec["containers"]
    assert container["command"][0] in scripts and scripts[container["command"][0]].startswith("trainer.")
    env = env_of(container)
    assert 'os.environ.get("MNIST_DIR"' in (REPO / OTHER_ENV["MNIST_DIR"]).read_text()
    for path in (env["MODELS_DIR"], env["MNIST_DIR"], image["env"]["MPLCONFIGDIR"]):
        mount, _ = mount_for(spec, container, path)
        assert not mount.get("readOnly"), path
    _, volume = mount_for(spec, container, env["MODELS_DIR"])
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    # status 2 is the trainer's "cannot save or download": failing the Job at once
    rules = trainer["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    (rule,) = [r for r in rules if r["action"] == "FailJob"]
    assert rule["onExitCodes"]["values"] == [2] and rule["onExitCodes"]["containerName"] == container["name"]

    seed = one("Job")
    spec = pod_spec(seed)
    (container,) = spec["containers"]
    env = env_of(container)
    # it copies from where the image keeps its models to the store
    assert image["copies"]["models"] == env["MODELS_DIR"] == image["env"]["MODELS_DIR"]
    assert env["MODEL_NAME"] == Config().model_name
    mount, volume = mount_for(spec, container, env["STORE"])
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"] and not mount.get("readOnly")


def test_the_seed_script_copies_versions_once_and_atomically(tmp_path):
    """The seed Job's shell script, run here on a copy of the image's layout."""
    if shutil.which("sh") is None:
        pytest.skip("no sh")
    container = pod_spec(one("Job"))["containers"][0]
    image_models, store = tmp_path / "image-models", tmp_path / "store"
    write_version(image_models)
    write_version(image_models)
    env = {**os.environ, **env_of(container), "MODELS_DIR": str(image_models), "STORE": str(store)}
    run = subprocess.run(container["command"], env=env, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (store / "mnist").iterdir()) == ["1", "2"]
    copied, original = store / "mnist" / "2" / "model.json", image_models / "mnist" / "2" / "model.json"
    assert copied.read_bytes() == original.read_bytes()
    # a store that already holds a version is left alone
    write_version(image_models)
    run = subprocess.run(container["command"], env=env, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and "nothing to seed" in run.stdout
    assert sorted(p.name for p in (store / "mnist").iterdir()) == ["1", "2"]


def test_service_hpa_pdb_policy_and_monitor_select_the_servers_pods():
    deployment = one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]

    def selects(selector):
        return selector and set(selector.items()) <= set(labels.items())

    assert "replicas" not in deployment["spec"]  # the HPA owns the count
    assert selects(deployment["spec"]["selector"]["matchLabels"])
    for constraint in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        assert selects(constraint["labelSelector"]["matchLabels"])
    assert {c["topologyKey"] for c in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]} >= \
        {"kubernetes.io/hostname"}
    service = one("Service")
    assert selects(service["spec"]["selector"])
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in [p["name"] for p in container["ports"]]
    hpa = one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    pdb = one("PodDisruptionBudget")
    assert selects(pdb["spec"]["selector"]["matchLabels"])
    assert hpa["spec"]["minReplicas"] - pdb["spec"]["maxUnavailable"] >= 1  # a drain never empties the service
    policy = one("NetworkPolicy")
    assert selects(policy["spec"]["podSelector"]["matchLabels"])
    assert policy["spec"]["egress"] == [] and "Egress" in policy["spec"]["policyTypes"]
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [port["targetPort"]]
    monitor = one("ServiceMonitor", MONITORING)
    assert set(monitor["spec"]["selector"]["matchLabels"].items()) <= set(service["metadata"]["labels"].items())
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"] and endpoint["path"] == "/metrics"
    # a pod's workers can keep as many cores busy as there are workers
    assert quantity(container["resources"]["limits"]["cpu"]) == int(env_of(container)["WORKERS"])


def test_mnist_serve_takes_the_port_option_kserve_passes():
    done = subprocess.run([sys.executable, "-m", "service", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "--port" in done.stdout


def test_image_names_and_tags_agree():
    image = dockerfile()
    assert compose()["x-image"]["image"].split(":")[0] == "mnist-serving"
    for directory in (K8S, K8S / "kserve"):
        (entry,) = yaml.safe_load((directory / "kustomization.yaml").read_text())["images"]
        assert entry == {"name": "mnist-serving", "newName": "mnist-serving", "newTag": project_version()}
    assert Config().port in image["expose"] and int(image["env"]["PORT"]) == Config().port


# -- nginx and compose -----------------------------------------------------------------
def test_nginx_limits_match_the_service():
    cfg = Config()
    gunicorn = gunicorn_settings()
    assert nginx_size(nginx_directive("client_max_body_size")) == cfg.max_upload_bytes
    assert f"{cfg.max_upload_bytes // 2**20} MiB" in NGINX_CONF.read_text()  # the 413 message says so
    # nginx drops idle connections to a replica before gunicorn would close them under a request
    assert nginx_seconds(nginx_directive("keepalive_timeout", upstream_block())) < gunicorn["keepalive"]
    assert nginx_seconds(nginx_directive("client_header_timeout")) == gunicorn["keepalive"]
    # the service's "10 s without a byte" of a body (the gevent worker's, read without importing gevent here)
    assert nginx_seconds(nginx_directive("client_body_timeout")) == constants(REPO / "service" / "worker.py")[
        "READ_TIMEOUT"]
    assert nginx_seconds(nginx_directive("proxy_read_timeout")) == gunicorn["timeout"]
    assert nginx_directive("proxy_request_buffering") == "on"
    for _, params in upstream_servers(NGINX_CONF.read_text()):
        assert re.fullmatch(r"max_fails=\d+ fail_timeout=\d+s", params)
    # a POST is never re-sent after it reached a replica
    assert "non_idempotent" not in nginx_directive("proxy_next_upstream")


def test_nginx_bounds_exactly_the_routes_the_service_bounds(app_routes):
    """nginx's in-flight bound covers the routes that run the model and nothing else, and its
    refusal is the service's: 503 ``overloaded`` with the same Retry-After and the request ID."""
    from service.admission import GUARDED, RETRY_AFTER_SECONDS

    app, _ = app_routes
    text = NGINX_CONF.read_text()
    block = re.search(r"location ~ (\S+) \{([^}]*)\}", text)
    assert "limit_conn mnist_model_requests" in block.group(2) and "proxy_pass" in block.group(2)
    bounded = re.compile(block.group(1))
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<[^>]+>", "x1", rule.rule)
        assert bool(bounded.fullmatch(path)) == (rule.endpoint in GUARDED and "POST" in rule.methods), rule.rule
    assert nginx_directive("limit_conn_status") == "503"
    assert re.search(r"^\s*error_page 503 @overloaded;", text, re.M)  # at server level: every location has it
    refusal = re.search(r"location @overloaded \{(.*?)\n        \}", text, re.S).group(1)
    assert f"add_header Retry-After {RETRY_AFTER_SECONDS} always;" in refusal
    assert "add_header X-Request-ID $mnist_request_id always;" in refusal
    body = json.loads(re.search(r"return 503 '(.*)\\n';", refusal).group(1))
    assert body["code"] == "overloaded" and set(body) == {"error", "code"}


def upstream_block():
    return re.search(r"upstream mnist_serving \{(.*?)\n    \}", NGINX_CONF.read_text(), re.S).group(1)


def test_nginx_passes_on_the_same_request_ids_the_service_keeps(app_routes):
    """nginx forwards a client's X-Request-ID only when the service would keep it (else its
    own): both then log the same ID. Compared on the service's real answers."""
    pattern = re.search(r'"~(\^[^"]+\$)"\s+\$http_x_request_id;', NGINX_CONF.read_text()).group(1)
    nginx = re.compile(pattern)
    client = app_routes[0].test_client()
    samples = ["abc", "A.b_c:d-e", "x" * 128, "x" * 129, "a b", "a/b", "a;b", "-" * 5, "0", "id=1", "a+b", "%41"]
    for sample in samples:
        kept = client.get("/health/live", headers={"X-Request-ID": sample}).headers["X-Request-ID"] == sample
        assert bool(nginx.fullmatch(sample)) == kept, sample


def test_compose_lb_profile_matches_nginxs_upstream():
    services = compose()["services"]
    hosts = {address.rsplit(":", 1)[0] for address, _ in upstream_servers(NGINX_CONF.read_text())}
    ports = {int(address.rsplit(":", 1)[1]) for address, _ in upstream_servers(NGINX_CONF.read_text())}
    assert hosts == {"service", "replica"} and ports == {Config().port}
    for host in hosts:
        assert int(services[host]["environment"]["PORT"]) == Config().port
    assert services["replica"]["profiles"] == services["nginx"]["profiles"] == ["lb"]
    assert "ports" not in services["replica"]  # scaled replicas cannot share a host port
    listen = int(nginx_directive("listen"))
    assert services["nginx"]["ports"] == [f"${{MNIST_LB_PORT:-{listen}}}:{listen}"]
    nginx_dockerfile = (REPO / "deploy" / "nginx" / "Dockerfile").read_text()
    assert f"EXPOSE {listen}" in nginx_dockerfile and "nginx.conf" in nginx_dockerfile
    assert services["nginx"]["read_only"] is True and services["nginx"]["tmpfs"] == ["/tmp"]
    assert "/nginx/health" in services["nginx"]["healthcheck"]["test"][-1]


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed (Debian package 'nginx')")
def test_nginx_accepts_the_config(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_config([8001, 8002, 8003], 8080, tmp_path))
    done = subprocess.run(["nginx", "-t", "-e", str(tmp_path / "error.log"), "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def docker_compose_available():
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(not docker_compose_available(), reason="no `docker compose` (CI sets one up)")
def test_compose_accepts_the_lb_profile():
    done = subprocess.run(["docker", "compose", "--profile", "lb", "config", "--format", "json"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    assert services["replica"]["deploy"]["replicas"] == 2
    assert {"service", "replica"} <= set(services["nginx"]["depends_on"])
    # without the profile, compose is what it was: the service alone (the trainer is a job)
    done = subprocess.run(["docker", "compose", "config", "--services"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["service"]


# -- lint, rules, dashboard ------------------------------------------------------------
def test_yaml_is_lint_clean():
    pytest.importorskip("yamllint", reason="yamllint not installed: pip install -e '.[test]'")
    files = [*sorted((REPO / "deploy").rglob("*.y*ml")), REPO / "docker-compose.yml", REPO / ".yamllint"]
    done = subprocess.run([sys.executable, "-m", "yamllint", "--strict", "-c", str(REPO / ".yamllint"),
                           *map(str, files)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool not installed (Debian package 'prometheus')")


@needs_promtool
def test_alert_rules_check_and_pass_their_unit_tests():
    check = subprocess.run(["promtool", "check", "rules", "alerts.yml"], cwd=PROMETHEUS, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 7 rules found" in check.stdout
    tests = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS, capture_output=True,
                           text=True, timeout=60)
    assert tests.returncode == 0, tests.stdout + tests.stderr


@needs_promtool
def test_the_rule_unit_tests_catch_a_broken_rule(tmp_path):
    """The unit tests are not vacuous: without its traffic guard, the error-ratio alert pages on a trickle."""
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path)
    rules = (PROMETHEUS / "alerts.yml").read_text()
    broken = re.sub(r"\) > 0\.05\n\s+and\n.*?> 0\.1\n", ") > 0.05\n", rules, flags=re.S)
    assert broken != rules
    (tmp_path / "alerts.yml").write_text(broken)
    tests = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=60)
    assert tests.returncode != 0 and "MnistServingHighErrorRatio" in tests.stdout + tests.stderr


@pytest.fixture(scope="module")
def exported(app_routes):
    """``{sample name: label names}`` that the service's /metrics really shows, after some traffic."""
    app, _ = app_routes
    client = app.test_client()
    client.post("/predict", data=GOOD, content_type="image/png")
    client.post("/predict", data=STROKE, content_type="image/png")
    client.post("/predict", data=b"junk", content_type="image/png")
    text = client.get("/metrics").get_data(as_text=True)
    names = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


TARGET_LABELS = {"job", "instance"}  # Prometheus adds them to every scraped series
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "offset", "inf", "nan"}


def promql_selectors(expr):
    """``[(metric name, label names matched), ...]`` of the series selectors in a PromQL expression."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    found = []
    for name, matchers in re.findall(r"\b([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}", expr):
        found.append((name, set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))))
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    for name in re.findall(r"(?<![\w$.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", bare):
        if name not in PROMQL_WORDS and name not in {n for n, _ in found}:
            found.append((name, set()))
    return found


def grouping_labels(expr):
    return {label for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr)
            for label in re.findall(r"\w+", group)}


@pytest.mark.parametrize("expr", alert_queries() + dashboard_queries())
def test_every_query_names_metrics_and_labels_the_service_exports(expr, exported):
    selectors = promql_selectors(re.sub(r"^label_values\((.*), *\w+\)$", r"\1", expr))
    assert selectors, expr
    every_label = set().union(*exported.values()) | TARGET_LABELS
    for name, labels in selectors:
        if name == "up":  # Prometheus's own per-target series
            assert labels <= TARGET_LABELS
            continue
        assert name in exported, f"{name} is not in the service's /metrics: {sorted(exported)}"
        assert labels <= exported[name] | TARGET_LABELS, (name, labels)
    assert grouping_labels(expr) <= every_label, expr


def test_the_query_parser_sees_what_it_should():
    assert promql_selectors('sum by (le) (rate(mnist_x_bucket{job="$job", route=~"/a|/b"}[$__rate_interval]))') == \
        [("mnist_x_bucket", {"job", "route"})]
    assert promql_selectors("time() - max by (instance) (mnist_y)") == [("mnist_y", set())]
    assert promql_selectors("absent(up == 1) and bool mnist_z offset 5m") == [("up", set()), ("mnist_z", set())]


def test_dashboard_is_well_formed():
    board = json.loads((REPO / "deploy" / "grafana" / "dashboard.json").read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "job", "instance"}
    cells = set()
    for panel in board["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, f"panel {panel['title']!r} overlaps another"
        cells |= area
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}"
            for target in panel["targets"]:
                used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval"}
                assert used <= variables, (panel["title"], used)
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for subject in ("requests/s", "errors", "latency", "images/s", "model version", "loads"):
        assert subject in titles, subject
