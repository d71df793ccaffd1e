"""Reads a Schemathesis NDJSON report and tells the failures of the service from the responses that
`cargo lambda watch` itself lost.

cargo lambda watch (1.9.2) now and then answers an invocation with its own
`500 text/plain {"type":"https://httpstatuses.com/500",...}` after the function has answered (seen
with responses of tens of kilobytes: the function logs its status, the emulator loses the body).
Such a response carries no `x-request-id`, which every response of this service carries. A run
whose only failures are such responses passes only if the emulator's log shows that no function
answered 5xx or panicked during the run: then no generated input got a 5xx from the service.

usage: schemathesis_verdict.py REPORT.ndjson [FUNCTION_LOG]
exit 0: no failures; 3: only lost responses and a clean function log; 1: anything else.
"""

import json
import re
import sys


def emulator_lost(response):
    if not response or response.get("status_code") != 500:
        return False
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return "x-request-id" not in headers and any(
        "text/plain" in v for v in headers.get("content-type", [])
    )


def main():
    report = sys.argv[1]
    log = sys.argv[2] if len(sys.argv) > 2 else None
    service, lost = [], []
    with open(report) as f:
        for line in f:
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            recorder = finished.get("recorder") or {}
            interactions = recorder.get("interactions") or {}
            for case_id, checks in (recorder.get("checks") or {}).items():
                failed = [c["name"] for c in checks if c.get("status") == "failure"]
                if not failed:
                    continue
                interaction = interactions.get(case_id) or {}
                request = interaction.get("request") or {}
                where = f'{request.get("method")} {request.get("uri")}'
                if emulator_lost(interaction.get("response")):
                    lost.append((where, failed))
                else:
                    service.append((where, failed))
    for where, failed in service:
        print(f"service failure: {where}: {', '.join(failed)}")
    for where, failed in lost:
        print(f"response lost by cargo lambda watch: {where}: {', '.join(failed)}")
    if service:
        return 1
    if not lost:
        return 0
    if not log:
        print("no function log given: cannot show that the functions answered below 500")
        return 1
    bad = [
        line.strip()
        for line in open(log, errors="replace")
        if re.search(r"status=5\d\d|panicked", line)
    ]
    for line in bad[:20]:
        print(f"function log: {line[:300]}")
    if bad:
        return 1
    print(
        f"{len(lost)} response(s) lost by the emulator; the function log shows no 5xx and no panic"
    )
    return 3


if __name__ == "__main__":
    sys.exit(main())
