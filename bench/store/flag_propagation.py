#!/usr/bin/env python3
"""Flag changes reaching follower replicas, through the `switchyard` binary (release build).

A leader and two followers (`switchyard serve --database-url`) on a throwaway PostgreSQL server
(scripts/postgres). Each round changes a flag through the leader's API, then, from its answer,
polls both followers' OFREP (which they answer themselves, from the store, read again on the
leader's NOTIFY) until both serve the new value. Prints p50/p99/max of the time until the last
follower served it.

    bench/store/flag_propagation.py [ROUNDS]        (default 200)
"""
import http.client, json, os, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "switchyard")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port


class Client:
    """One kept-alive connection."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    def call(self, method, path, body=None):
        for _ in range(2):
            try:
                self.conn.request(method, path, body=body, headers={"content-type": "application/json"})
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        return None, b""


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    out = subprocess.run([os.path.join(ROOT, "scripts", "postgres"), "start"], check=True,
                         capture_output=True, text=True).stdout.split()
    admin, pg_dir = out[0], out[1]
    work = tempfile.mkdtemp()
    procs = []
    try:
        subprocess.run(["psql", admin, "-q", "-c", "CREATE DATABASE flags"], check=True)
        url = admin.rsplit("/", 1)[0] + "/flags"
        ports = [free_port() for _ in range(3)]
        for i, port in enumerate(ports):
            procs.append(subprocess.Popen(
                [BIN, "serve", "--no-proxy", "--insecure-no-auth", "--data-dir", os.path.join(work, str(i)),
                 "--listen", f"127.0.0.1:{port}", "--database-url", url],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            deadline = time.time() + 30
            while Client(port).call("GET", "/ready")[0] != 200:
                if time.time() > deadline:
                    raise SystemExit(f"replica {i} not ready")
                time.sleep(0.05)
        leader, followers = Client(ports[0]), [Client(p) for p in ports[1:]]
        flag = "flags:\n  - key: k\n    type: string\n    variants: {a: a, b: b}\n    defaultVariant: %s\n"
        times = []
        for r in range(rounds + 1):
            value = "ab"[r % 2]
            status, body = leader.call("PUT", "/api/v1/flags", json.dumps({"format": "native", "content": flag % value}))
            assert status == 200, (status, body)
            answered = time.monotonic()
            pending = list(followers)
            while pending:
                pending = [f for f in pending
                           if json.loads(f.call("POST", "/ofrep/v1/evaluate/flags/k", '{"context": {}}')[1] or b"{}").get("value") != value]
            if r > 0:  # the first round creates the flag
                times.append(time.monotonic() - answered)
        times.sort()
        pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
        print(f"{rounds} flag changes through the leader, until both followers served each: "
              f"p50 {pick(0.5) * 1000:.2f} ms, p99 {pick(0.99) * 1000:.2f} ms, max {times[-1] * 1000:.2f} ms")
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT); p.wait()
        subprocess.run([os.path.join(ROOT, "scripts", "postgres"), "stop", pg_dir])


main()
