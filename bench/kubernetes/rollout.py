#!/usr/bin/env python3
"""Switchyard on the test cluster (scripts/kube-cluster): what a `kubernetes` app costs.

  1. Time from `switchyard deploy` to the first canary weight in force in the cluster (the
     HTTPRoute read with `kubectl get --watch`), and the API calls Switchyard made for each
     rollout step (counted in the API server's audit log, by Switchyard's service account).
  2. Switchyard's RSS with N apps deployed on the cluster (one ReplicaSet, two Services and an
     HTTPRoute each), and the API calls per second it makes once they are at rest.

Usage: python3 bench/kubernetes/rollout.py [--rounds 10] [--apps 1000]
Runs target/release/switchyard (build it first: cargo build --release) with exactly the
permissions of deploy/kubernetes/.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / "target/release/switchyard"
SA_USER = "system:serviceaccount:switchyard:switchyard"


def run(*args, stdin=None, check=True, env=None):
    out = subprocess.run(args, input=stdin, capture_output=True, text=True, env=env)
    if check and out.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed: {out.stderr}{out.stdout}")
    return out.stdout


class Cluster:
    def __init__(self):
        env = dict(os.environ, SWITCHYARD_KUBE_AUDIT="1")
        out = run(str(ROOT / "scripts/kube-cluster"), "start", env=env).splitlines()
        self.kubeconfig, self.dir = out[0], out[1]
        self.kubectl = run(str(ROOT / "scripts/kube-cluster"), "build").strip() + "/bin/kubectl"

    def k(self, *args, stdin=None, ns="bench"):
        return run(self.kubectl, "--kubeconfig", self.kubeconfig, "-n", ns, *args, stdin=stdin)

    def stop(self):
        run(str(ROOT / "scripts/kube-cluster"), "stop", self.dir, check=False)

    def audit(self):
        """Switchyard's requests so far: (stage timestamp, verb, resource)."""
        calls = []
        with open(pathlib.Path(self.dir) / "audit.log") as f:
            for line in f:
                e = json.loads(line)
                if e.get("user", {}).get("username") != SA_USER:
                    continue
                ts = e["stageTimestamp"]
                calls.append((ts, e["verb"], e.get("objectRef", {}).get("resource", "?")))
        return calls


def sa_kubeconfig(cluster, path):
    token = cluster.k("create", "token", "switchyard", "--duration", "2h", ns="switchyard").strip()
    admin = open(cluster.kubeconfig).read()
    field = lambda name: next(l.split(":", 1)[1].strip() for l in admin.splitlines() if l.strip().startswith(name))
    path.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n"
        f"    server: {field('server')}\n    certificate-authority: {field('certificate-authority')}\n"
        f"users:\n- name: s\n  user:\n    token: {token}\n"
        "contexts:\n- name: t\n  context: {cluster: t, user: s}\ncurrent-context: t\n"
    )


def app_doc(name, strategy):
    return f"""apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {{name: {name}}}
spec:
  runtime:
    kubernetes:
      namespace: bench
      replicas: {2 if name == 'shop' else 1}
      port: 8080
      scaleDownDelay: 1s
      trafficRouting: {{gatewayAPI: {{httpRoute: {name}}}}}
      template:
        spec:
          containers: [{{name: web, image: 'registry.example/{name}:{{version}}', ports: [{{containerPort: 8080}}]}}]
  strategy:
{strategy}
"""


def route_doc(name):
    return f"""apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: bench}}
spec:
  parentRefs: [{{name: gateway}}]
  rules:
  - backendRefs: [{{name: {name}-stable, port: 80}}]
"""


class Watch:
    """`kubectl get httproute NAME --watch -o json`: the time each (stable, canary) weight pair
    was first seen."""

    def __init__(self, cluster, name):
        self.seen = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [cluster.kubectl, "--kubeconfig", cluster.kubeconfig, "-n", "bench", "get", "httproute",
             name, "--watch", "-o", "json"], stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        decoder, buf = json.JSONDecoder(), ""
        for line in self.proc.stdout:
            buf += line
            try:
                obj, end = decoder.raw_decode(buf.strip())
            except json.JSONDecodeError:
                continue
            buf = ""
            refs = obj["spec"]["rules"][0]["backendRefs"]
            w = {r["name"]: r.get("weight", 1) for r in refs}
            pair = (w.get("shop-stable"), w.get("shop-canary", 0))
            with self.cond:
                self.seen.append((time.monotonic(), pair))
                self.cond.notify_all()

    def wait(self, pair, since):
        with self.cond:
            while True:
                for t, p in self.seen:
                    if t >= since and p == pair:
                        return t
                if not self.cond.wait(timeout=120):
                    sys.exit(f"weights {pair} never seen: {self.seen[-5:]}")

    def stop(self):
        self.proc.kill()


def counted(cluster, before):
    """Switchyard's API calls since the audit log held `before` of them, by verb."""
    calls = cluster.audit()[before:]
    return len(calls), collections.Counter(f"{v} {r}" for _, v, r in calls)


def settle(cluster, quiet=1.0):
    """Waits until the audit log stops growing (the API server writes it a little late)."""
    n = -1
    while True:
        time.sleep(quiet)
        m = len(cluster.audit())
        if m == n:
            return m
        n = m


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--apps", type=int, default=1000)
    args = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} missing: cargo build --release")
    cluster = Cluster()
    daemon = None
    try:
        cluster.k("create", "namespace", "bench", ns="default")
        for f in ["namespace.yaml", "serviceaccount.yaml", "clusterrole.yaml"]:
            cluster.k("apply", "-f", str(ROOT / "deploy/kubernetes" / f), ns="switchyard")
        binding = (ROOT / "deploy/kubernetes/rolebinding.yaml").read_text().replace("namespace: shop", "namespace: bench")
        cluster.k("apply", "-f", "-", stdin=binding)
        work = pathlib.Path(tempfile.mkdtemp(prefix="sy-kube-bench."))
        sa_kubeconfig(cluster, work / "sa.kubeconfig")
        port = 17000 + os.getpid() % 1000
        daemon = subprocess.Popen(
            [str(BIN), "serve", "--no-proxy", "--data-dir", str(work / "data"), "--listen", f"127.0.0.1:{port}",
             "--kubeconfig", str(work / "sa.kubeconfig")],
            stdout=subprocess.DEVNULL, stderr=open(work / "daemon.log", "w"), env=dict(os.environ, SWITCHYARD_LOG="warn"))
        api = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(api + "/ready", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        token = (work / "data/admin.token").read_text().strip()
        env = dict(os.environ, SWITCHYARD_SERVER=api, SWITCHYARD_TOKEN=token, SWITCHYARD_CONFIG="/nonexistent")
        sy = lambda *a: run(str(BIN), *a, env=env)
        rss_empty = rss_kib(daemon.pid)

        # 1. deploy → first weight, and calls per step.
        cluster.k("apply", "-f", "-", stdin=route_doc("shop"))
        (work / "shop.yaml").write_text(app_doc("shop", "    canary:\n      steps: [{setWeight: 20}, {pause: {}}, {setWeight: 50}, {pause: {}}]"))
        sy("apply", "-f", str(work / "shop.yaml"))
        before = settle(cluster)
        sy("deploy", "shop", "--version", "v1")
        first_release = counted(cluster, before)
        watch = Watch(cluster, "shop")
        times, steps = [], collections.defaultdict(list)
        for i in range(args.rounds):
            before = settle(cluster)
            t0 = time.monotonic()
            sy("deploy", "shop", "--version", f"v{i + 2}")
            t1 = watch.wait((80, 20), t0)
            times.append(t1 - t0)
            steps["deploy → 20 %"].append(counted(cluster, before))
            before = settle(cluster)
            t0 = time.monotonic()
            sy("promote", "shop")
            watch.wait((50, 50), t0)
            steps["promote → 50 %"].append(counted(cluster, before))
            before = settle(cluster)
            t0 = time.monotonic()
            sy("abort", "shop", "--reason", "bench")
            watch.wait((100, 0), t0)
            steps["abort → 100/0"].append(counted(cluster, before))
        watch.stop()
        times.sort()
        print(f"## deploy → first canary weight in force ({args.rounds} rounds, 2 replicas per release)")
        print(f"median {statistics.median(times) * 1000:.0f} ms, min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")
        print("\n## API calls by Switchyard per rollout step (median of the rounds; settled: includes the 2 s drift reads while split)")
        print(f"first release (deploy v1): {first_release[0]} calls: {dict(first_release[1])}")
        for name, rounds in steps.items():
            counts = sorted(n for n, _ in rounds)
            print(f"{name}: median {statistics.median(counts)}, min {counts[0]}, max {counts[-1]}; e.g. {dict(rounds[len(rounds) // 2][1])}")

        # 2. N apps.
        names = [f"app-{i:04d}" for i in range(args.apps)]
        cluster.k("apply", "-f", "-", stdin="---\n".join(route_doc(n) for n in names))
        (work / "many.yaml").write_text("---\n".join(app_doc(n, "    canary:\n      steps: [{setWeight: 20}, {pause: {}}]") for n in names))
        t0 = time.monotonic()
        sy("apply", "-f", str(work / "many.yaml"))
        applied = time.monotonic() - t0
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: sy("deploy", n, "--version", "v1"), names))
        deployed = time.monotonic() - t0
        rss_after = rss_kib(daemon.pid)
        before = settle(cluster, quiet=2.0)
        time.sleep(30)
        idle, by = counted(cluster, before)
        rss_idle = rss_kib(daemon.pid)
        print(f"\n## {args.apps} apps on the cluster")
        print(f"apply of {args.apps} App documents: {applied:.1f} s; {args.apps} first releases (16 deploys at a time): {deployed:.1f} s")
        print(f"RSS: {rss_empty / 1024:.1f} MiB with no app, {rss_after / 1024:.1f} MiB right after, {rss_idle / 1024:.1f} MiB 30 s later")
        print(f"API calls at rest: {idle} in 30 s ({idle / 30:.2f}/s): {dict(by)}")
    finally:
        if daemon:
            daemon.terminate()
            daemon.wait()
        cluster.stop()


if __name__ == "__main__":
    main()
