"""The verdict of one Schemathesis run (scripts/schemathesis.sh): reads that run's NDJSON report
and decides. Every failing check fails the run, and so does every error Schemathesis met (a
timeout, a dropped connection, a request it could not send): those are requests with no verdict.

One thing is excused, a few times at most: a response that `cargo lambda watch` itself lost.
cargo lambda watch (1.9.2) now and then answers an invocation with its own
`500 text/plain {"type":"https://httpstatuses.com/500",...}` after the function answered (seen
with responses of tens of kilobytes). Such a response carries no `x-request-id`, which every
response of this service carries. It is excused only if
  - it is one of at most MAX_LOST in the run,
  - the same request, sent again once, passes every check (Schemathesis' own, through its Python
    API, with the configuration's exclusions), and
  - the functions' log shows that no function answered 5xx or panicked during the run.

usage: schemathesis_verdict.py REPORT.ndjson OPENAPI BASE_URL SCHEMATHESIS_STATUS [FUNCTION_LOG]
exit 0: the run passed; 1: it failed. The last line says how many responses were excused.
"""

import base64
import json
import re
import sys

MAX_LOST = 3


def emulator_lost(response):
    if not response or response.get("status_code") != 500:
        return False
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return "x-request-id" not in headers and any(
        "text/plain" in v for v in headers.get("content-type", [])
    )


def read(report):
    """The failed cases (with their request and case), and the errors, of one report."""
    failures, errors = [], []
    with open(report) as f:
        for line in f:
            event = json.loads(line)
            kind = next(iter(event))
            if "Error" in kind or kind == "Interrupted":
                info = event[kind]
                errors.append(f"{kind}: {json.dumps(info)[:300]}")
                continue
            finished = event.get("ScenarioFinished") or event.get("FuzzScenarioFinished")
            if not finished:
                continue
            recorder = finished.get("recorder") or {}
            interactions = recorder.get("interactions") or {}
            cases = recorder.get("cases") or {}
            for case_id, checks in (recorder.get("checks") or {}).items():
                failed = [c["name"] for c in checks if c.get("status") == "failure"]
                if failed:
                    failures.append(
                        (failed, interactions.get(case_id) or {}, (cases.get(case_id) or {}).get("value") or {})
                    )
            for case_id, case in cases.items():
                interaction = interactions.get(case_id)
                if interaction is not None and interaction.get("response") is None:
                    request = interaction.get("request") or {}
                    errors.append(
                        f"no response (timeout or dropped connection): {request.get('method')} {request.get('uri')}"
                    )
    return failures, errors


def decoded(value):
    if isinstance(value, dict) and set(value) == {"$base64"}:
        return base64.b64decode(value["$base64"])
    return value


def replay(openapi, base_url, case_value):
    """Sends the case again once and runs every check on the answer; None when it passes."""
    import schemathesis
    from schemathesis.specs.openapi.checks import ignored_auth

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    import schemathesis_hooks  # noqa: F401  (registers the contract's own check)

    schema = schemathesis.openapi.from_path(openapi)
    operation = schema[case_value["path"]][case_value["method"].upper()]
    kwargs = {
        key: decoded(case_value[key])
        for key in ("path_parameters", "query", "headers", "body", "media_type")
        if key in case_value
    }
    case = operation.Case(**kwargs)
    try:
        response = case.call_and_validate(base_url=base_url, excluded_checks=[ignored_auth])
    except (Exception, BaseExceptionGroup) as failure:  # a FailureGroup of checks, or a send error
        return f"{type(failure).__name__}: {str(failure)[:400]}"
    if "x-request-id" not in {k.lower() for k in response.headers}:
        return f"the replay was lost again ({response.status_code})"
    return None


def main():
    report, openapi, base_url, status = sys.argv[1:5]
    log = sys.argv[5] if len(sys.argv) > 5 else None
    failures, errors = read(report)
    service = [(f, i) for f, i, _ in failures if not emulator_lost(i.get("response"))]
    lost = [(f, i, c) for f, i, c in failures if emulator_lost(i.get("response"))]
    verdict = 0
    for error in errors:
        print(f"schemathesis error: {error}")
        verdict = 1
    for failed, interaction in service:
        request = interaction.get("request") or {}
        print(f"service failure: {request.get('method')} {request.get('uri')}: {', '.join(failed)}")
        verdict = 1
    if status != "0" and not failures and not errors:
        print(f"schemathesis exited {status}, but its report shows no failure: see its output above")
        verdict = 1
    if len(lost) > MAX_LOST:
        print(f"{len(lost)} responses lost by the emulator: more than the {MAX_LOST} a run may excuse")
        verdict = 1
    if lost and verdict == 0:
        bad = []
        if log:
            bad = [
                line.strip()
                for line in open(log, errors="replace")
                if re.search(r"status=5\d\d|panicked", line)
            ]
        else:
            print("no function log given: cannot show that the functions answered below 500")
            verdict = 1
        for line in bad[:20]:
            print(f"function log: {line[:300]}")
            verdict = 1
        for failed, interaction, case in lost:
            request = interaction.get("request") or {}
            where = f"{request.get('method')} {request.get('uri')}"
            problem = replay(openapi, base_url, case) if case else "the report has no case to replay"
            if problem:
                print(f"lost by cargo lambda watch, and its replay failed: {where}: {problem}")
                verdict = 1
            else:
                print(f"lost by cargo lambda watch, replayed and passed every check: {where}")
    excused = len(lost) if verdict == 0 else 0
    print(f"{excused} response(s) lost by the emulator")
    return verdict


if __name__ == "__main__":
    sys.exit(main())
