#!/usr/bin/env python3
"""The fixed cost of a function's request path, A/B between builds (docs/performance.md, round 4).

Runs each binary in turn against a minimal Lambda Runtime API that hands it one API Gateway HTTP
API event (`PUT /v1/conversations`, which every function answers 405 without calling DynamoDB;
give the `fallback` binaries, and `hello-world` for the empty function's floor) `--n` times, and
times each invocation from the moment the event is written to the moment the response arrives.
Rounds interleave the binaries so that each round sees one machine; the report gives each
binary's median p50 over the rounds and its paired difference from the first binary with the
standard error of that difference.

    python3 bench/fixed_cost.py --rounds 12 before/fallback after/fallback RUST_LOG=off@before/fallback \
        target/release/hello-world

A binary written `NAME=VALUE[,NAME=VALUE]@path` runs with those variables added.

Only the standard library; nothing is sent to DynamoDB (the endpoint is a closed port).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time

EVENT = json.dumps(
    {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/v1/conversations",
        "rawQueryString": "",
        "headers": {"host": "bench.execute-api.us-east-1.amazonaws.com", "user-agent": "bench"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench",
            "http": {
                "method": "PUT",
                "path": "/v1/conversations",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "bench",
            },
            "requestId": "fixed-cost",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1795392000000,
            "authorizer": {"jwt": {"claims": {"sub": "bench"}, "scopes": None}},
        },
        "isBase64Encoded": False,
    }
).encode()

WARM_UP = 20


def run_once(binary: str, n: int, extra_env: dict[str, str], log: str) -> float:
    """The p50 latency (ms) of `n` invocations of `binary`, after WARM_UP more."""
    total = n + WARM_UP
    served = {"count": 0, "sent": 0.0}
    latencies: list[float] = []
    finished = threading.Event()

    class Api(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if served["count"] >= total:
                finished.set()
                time.sleep(5)
                return
            served["count"] += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", f"req-{served['count']}")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
            self.send_header(
                "Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:1:function:f"
            )
            self.send_header("Content-Length", str(len(EVENT)))
            self.end_headers()
            self.wfile.write(EVENT)
            self.wfile.flush()
            served["sent"] = time.perf_counter()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            latencies.append(time.perf_counter() - served["sent"])
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "fixed-cost",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:9",
        "CONVERSATIONS_TABLE": "fixed-cost",
        "CONVERSATIONS_WARM_UP": "off",
        **extra_env,
    }
    with open(log, "a") as out:
        child = subprocess.Popen([binary], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            if not finished.wait(120):
                raise SystemExit(f"{binary}: timed out")
        finally:
            child.kill()
            child.wait()
            server.shutdown()
    return statistics.median(latencies[WARM_UP:]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "binaries", nargs="+", help="[NAME=VALUE,...@]binary; the first is the reference"
    )
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--n", type=int, default=3000, help="invocations per binary and round")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for every binary (e.g. RUST_LOG=off)"
    )
    args = parser.parse_args()
    common = dict(pair.split("=", 1) for pair in args.env)
    runs = []
    for spec in args.binaries:
        variables, _, binary = spec.rpartition("@")
        extra = dict(common)
        extra.update(pair.split("=", 1) for pair in variables.split(",") if pair)
        runs.append((binary, extra))
    log = os.path.join(tempfile.mkdtemp(prefix="fixed-cost-"), "functions.log")
    rounds = [[run_once(b, args.n, e, log) for b, e in runs] for _ in range(args.rounds)]
    print(f"{args.rounds} rounds of {args.n} invocations; function logs in {log}")
    for i, binary in enumerate(args.binaries):
        p50s = [r[i] for r in rounds]
        line = f"{binary:60} p50 median {statistics.median(p50s):.3f} ms"
        if i > 0:
            diffs = [r[i] - r[0] for r in rounds]
            sem = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
            line += f"   vs first {statistics.mean(diffs):+.3f} ± {sem:.3f} ms"
        print(line)


if __name__ == "__main__":
    main()
