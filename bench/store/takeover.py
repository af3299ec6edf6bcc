#!/usr/bin/env python3
"""Leader takeover time through the `switchyard` binary (release build).

Three `switchyard serve --database-url` replicas on one PostgreSQL database (a throwaway server
from scripts/postgres). Each round SIGKILLs the leader, then times, from the kill, until a write
sent through a surviving replica (a flag toggle) is accepted, i.e. until another replica holds
the lease and serves; the killed replica is then started again (it follows). Prints, per lease
TTL, the median and the largest of the rounds.

    bench/store/takeover.py [ROUNDS] [TTL ...]      (defaults: 10 rounds; 2s 5s 10s)
"""
import http.client, json, os, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "switchyard")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port


def request(port, method, path, body=None, token=None):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse(); data = r.read(); c.close()
        return r.status, data
    except OSError:
        return None, b""


def psql(url, sql):
    return subprocess.run(["psql", url, "-X", "-A", "-t", "-c", sql], check=True, capture_output=True, text=True).stdout.strip()


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    ttls = sys.argv[2:] or ["2s", "5s", "10s"]
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    out = subprocess.run([os.path.join(ROOT, "scripts", "postgres"), "start"], check=True, capture_output=True, text=True).stdout.split()
    admin, pg_dir = out[0], out[1]
    work = tempfile.mkdtemp()
    results = []
    try:
        for ttl in ttls:
            db = f"takeover_{ttl.replace('.', '_')}"
            psql(admin, f"CREATE DATABASE {db}")
            url = admin.rsplit("/", 1)[0] + "/" + db
            ports = [free_port() for _ in range(3)]
            dirs = [os.path.join(work, f"{db}-{i}") for i in range(3)]
            procs = [None] * 3

            def start(i):
                os.makedirs(dirs[i], exist_ok=True)
                procs[i] = subprocess.Popen([BIN, "serve", "--no-proxy", "--insecure-no-auth", "--data-dir", dirs[i],
                                             "--listen", f"127.0.0.1:{ports[i]}", "--database-url", url, "--lease-ttl", ttl],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                deadline = time.time() + 30
                while time.time() < deadline:
                    if request(ports[i], "GET", "/ready")[0] == 200:
                        return
                    time.sleep(0.05)
                raise SystemExit(f"replica {i} not ready")

            for i in range(3):
                start(i)
            content = "flags:\n  - key: k\n    type: boolean\n    variants: {on: true, off: false}\n    defaultVariant: off\n"
            flags = json.dumps({"format": "native", "content": content})
            status, body = request(ports[1], "PUT", "/api/v1/flags", flags)
            assert status == 200, (status, body)
            times = []
            for r in range(rounds):
                api = psql(url, "SELECT api FROM leader_lease")
                leader = ports.index(int(api.rsplit(":", 1)[1]))
                other = (leader + 1) % 3
                killed = time.monotonic()
                procs[leader].send_signal(signal.SIGKILL); procs[leader].wait()
                action = "disable" if r % 2 == 0 else "enable"
                while True:
                    status, _ = request(ports[other], "POST", f"/api/v1/flags/k/environments/production/{action}", "{}")
                    if status == 200:
                        break
                    time.sleep(0.01)
                times.append(time.monotonic() - killed)
                start(leader)
            for p in procs:
                p.send_signal(signal.SIGINT); p.wait()
            times.sort()
            median = times[len(times) // 2]
            results.append((ttl, median, times[-1]))
            print(f"lease TTL {ttl}: {rounds} SIGKILLs of the leader, write accepted again after median {median:.2f} s, at most {times[-1]:.2f} s", flush=True)
    finally:
        subprocess.run([os.path.join(ROOT, "scripts", "postgres"), "stop", pg_dir])


main()
