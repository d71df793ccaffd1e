"""Turns the harness's results.json into RESULTS.md and a PNG chart.

usage: report.py RESULTS_JSON OUT_DIR [--sizes target/lambda]
       report.py --write-cost RESULTS_JSON     (the write cost section alone, on stdout)

Every figure is shown with the floor it is divided by and the goal of issue 5; a missed goal says
by how much (docs/performance.md says why and what would close it).
"""
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import sizes as sizes_mod  # noqa: E402

GOALS = {
    "cold": 1.5,  # init p50 / hello-world init p50
    "warm": 1.10,  # p50 / raw SDK p50
    "zip_mb": 4.0,
    "rss_mb": 24.0,
    "scale": 1.2,
}


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine():
    cpu = ""
    for line in sh("lscpu").splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu or platform.processor()}, {os.cpu_count()} cores, {mem}, Linux {platform.release()} ({platform.machine()})",
        "rustc": sh("rustc", "-V"),
        "cargo-lambda": sh("cargo", "lambda", "--version"),
        "java": java[0] if java else "",
        "dynamodb_local": os.environ.get("DYNAMODB_LOCAL_VERSION", ""),
    }


def verdict(value, goal, unit="×"):
    if value is None:
        return "n/a"
    if value <= goal:
        return f"met (≤ {goal}{unit})"
    return f"**missed by {value - goal:.2f}{unit}** (goal ≤ {goal}{unit})"


def mb(b):
    return b / 1e6


def main():
    if sys.argv[1] == "--write-cost":
        # The write cost section alone, from any run that measured it (`--only write_cost`).
        print("\n".join(write_cost_lines(json.load(open(sys.argv[2])).get("write_cost"))))
        return
    results_path, out = sys.argv[1], sys.argv[2]
    lambda_dir = "target/lambda"
    if "--sizes" in sys.argv:
        lambda_dir = sys.argv[sys.argv.index("--sizes") + 1]
    r = json.load(open(results_path))
    meta = machine()
    built = sizes_mod.sizes(lambda_dir, include=("hello-world",))
    s = r["settings"]
    lines = []
    w = lines.append
    w("# Benchmark results")
    w("")
    if s["smoke"]:
        w("> **Smoke run** (a few invocations of everything, debug binaries): these figures only prove the harness works.")
        w("")
    w(f"Written by `make bench` on {meta['date']}. Machine: {meta['machine']}. {meta['rustc']}; "
      f"{meta['cargo-lambda']}; DynamoDB Local {meta['dynamodb_local']} on {meta['java']}. "
      f"The functions run as x86_64 release binaries (the release profile of Cargo.toml) under the "
      f"harness's own Lambda Runtime API, reaching DynamoDB Local over loopback; every ratio divides "
      f"by a floor measured in the same run. Whole run: {r['duration_seconds']:.0f} s.")
    w("")
    w("![benchmark chart](chart.png)")
    w("")

    # 1. Cold starts
    cold = r["cold"]
    floor = cold[0]
    w(f"## 1. Cold start (median of {s['cold_starts']} starts each)")
    w("")
    w("*init*: from exec to the first `GET /next` of the runtime loop. *init + first request*: from exec to the answer of an event that was waiting when the process started.")
    w(f"Floor: `hello-world` (bare `lambda_runtime`, same profile), init p50 {floor['init']['p50_ms']:.2f} ms. Goal: init ≤ {GOALS['cold']}× the floor.")
    w("")
    w("| function | init p50 (ms) | init p99 (ms) | × hello-world | init + first request p50 (ms) | goal |")
    w("|---|---:|---:|---:|---:|---|")
    for c in cold:
        goal = "floor" if c is floor else verdict(c["init_ratio"], GOALS["cold"])
        if "no warm-up" in c["function"]:
            goal = "for comparison"
        w(f"| {c['function']} | {c['init']['p50_ms']:.2f} | {c['init']['p99_ms']:.2f} | {c['init_ratio']:.2f} | "
          f"{c['init_and_first_request']['p50_ms']:.2f} | {goal} |")
    w("")

    # 2. Warm
    warm = r["warm"]
    w(f"## 2. Warm latency ({warm['invocations']} invocations each, through the runtime loop)")
    w("")
    lf = warm["runtime_loop_floor"]
    w(f"Function latency: from the event leaving the Runtime API to the function's answer. Floor: the raw SDK call(s) the method needs, "
      f"made directly by the harness, interleaved with the function's invocations. The runtime loop alone (hello-world) takes p50 {lf['p50_ms']:.3f} ms. "
      f"Goal: p50 ratio ≤ {GOALS['warm']}. The last columns add to each raw sample an empty function's trip through the runtime loop "
      "made in the same iteration (hello-world, running beside the method's function): the floor of any Lambda function that makes these calls "
      "and nothing else, and what the function takes over it (parsing the event, checking the request, mapping items, rendering, the log line).")
    w("")
    w("| method | function p50 (ms) | function p99 (ms) | raw SDK p50 (ms) | p50 ratio | goal | raw SDK + loop p50 (ms) | ratio to it | over it (ms) |")
    w("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for m in warm["methods"]:
        raw = m["raw_sdk_latency"]
        raw_p50 = f"{raw['p50_ms']:.3f}" if raw else "— (no DynamoDB call)"
        goal = verdict(m["p50_ratio"], GOALS["warm"]) if raw else "against the runtime loop floor"
        rl = m.get("raw_sdk_and_loop_latency")
        with_loop = (f"{rl['p50_ms']:.3f} | {m['p50_ratio_with_loop']:.2f} | {m['p50_over_raw_and_loop_ms']:.3f}"
                     if rl else "— | — | —")
        w(f"| {m['method']} | {m['function_latency']['p50_ms']:.3f} | {m['function_latency']['p99_ms']:.3f} | {raw_p50} | {m['p50_ratio']:.2f} | {goal} | {with_loop} |")
    w("")

    # 3. Cost
    w("## 3. DynamoDB cost per request")
    w("")
    w("Counted by a proxy in front of DynamoDB Local that adds `ReturnConsumedCapacity: INDEXES` to every request. "
      "Capacity units are what DynamoDB Local reports (table + index), transactional writes at twice the units of plain ones, as DynamoDB bills them; "
      "a transaction's table units are computed by the proxy instead (DynamoDB Local reports one item of a `TransactWriteItems`, not each): 2 per KB of each item it writes, the larger of its sizes before and after (bench/src/proxy.rs). "
      "An index is written when a write changes an attribute it projects (every attribute: both project `ALL`), "
      "and twice (a delete and a put) when the write moves the item's key in it: every append moves the conversation's head in `by-activity`. "
      "A transaction's index units are computed by the proxy too (DynamoDB Local counts one item's), in two conventions: "
      "*index ×2* bills them twice like the table's (the columns by part), *index ×1* once (a third-party measurement on DynamoDB found them not doubled); "
      "they differ only for transactions. "
      "At init every function but fallback sends one `GetItem` (the layout marker, which opens the connection: 0.5 RCU).")
    w("")
    w("| method | requests | operations | capacity units (index ×2) | capacity units (index ×1) | table | by-owner index (×2) | by-activity index (×2) |")
    w("|---|---:|---|---:|---:|---:|---:|---:|")
    for c in r["cost"]:
        req = str(c["requests_min"]) if c["requests_min"] == c["requests_max"] else f"{c['requests_min']}–{c['requests_max']}"
        ops = " + ".join(c["operations"]) or "none"
        part = c.get("capacity_units_by_part") or {}
        cols = " | ".join(f"{part.get(p, 0) + 0:.1f}" for p in ("table", "by-owner", "by-activity"))
        once = c.get("capacity_units_index_once", c["capacity_units"])
        w(f"| {c['method']} | {req} | {ops} | {c['capacity_units'] + 0:.1f} | {once + 0:.1f} | {cols} |")
    w("")

    # 3a. Clear against how many messages it clears
    clear = r.get("clear_cost")
    if clear:
        w("### Clear messages against how many it clears")
        w("")
        w("`POST /v1/conversations/{id}/messages/clear` with `throughOrder`, each invocation on a conversation seeded for it "
          "(orders 1 to *held*), counted as above. A clear reads the conversation, counts the shorter of the range it keeps and "
          "the range it newly clears (keys-only `Query`s, one per MB), and moves the boundary with one `UpdateItem`: "
          "nothing is written per message. Each pair of rows should cost the same.")
        w("")
        w("| case | held | throughOrder | range read | requests | operations | capacity units | table | by-owner index | by-activity index |")
        w("|---|---:|---:|---|---:|---|---:|---:|---:|---:|")
        for c in clear:
            req = str(c["requests_min"]) if c["requests_min"] == c["requests_max"] else f"{c['requests_min']}–{c['requests_max']}"
            ops = " + ".join(c["operations"]) or "none"
            part = c.get("capacity_units_by_part") or {}
            cols = " | ".join(f"{part.get(p, 0) + 0:.1f}" for p in ("table", "by-owner", "by-activity"))
            w(f"| {c['what']} | {c['messages']} | {c['through_order']} | {c['range_read']} range ({min(c['kept'], c['cleared'])} messages) | {req} | {ops} | {c['capacity_units'] + 0:.1f} | {cols} |")
        w("")
        for a, b in ((0, 1), (2, 3)):
            if len(clear) > b:
                same = all(clear[a][k] == clear[b][k] for k in ("requests_min", "requests_max", "capacity_units", "capacity_units_by_part"))
                w(f"- {clear[b]['what']} against {clear[a]['what']}: "
                  + ("the same requests and units." if same else "**not the same requests and units.**"))
        w("")

    # 3b. Write cost against conversation size
    lines.extend(write_cost_lines(r.get("write_cost")))

    # 4. Size and memory
    w("## 4. Size and memory")
    w("")
    w(f"Sizes: the arm64 release binaries that `make build` (and `sam build`) make, zipped as a deployment package. Goal: ≤ {GOALS['zip_mb']} MB zipped. "
      f"Peak RSS (`VmHWM`) of the x86_64 release process after {warm['invocations']} warm invocations. Goal: ≤ {GOALS['rss_mb']} MB.")
    w("")
    w("| function | binary (MB) | zipped (MB) | size goal | peak RSS (MB) | memory goal |")
    w("|---|---:|---:|---|---:|---|")
    rss = {m["function"]: m["peak_rss_bytes"] for m in warm["methods"]}
    rss["hello-world"] = warm.get("hello_world_peak_rss_bytes")
    names = sorted(set(built) | set(rss), key=lambda n: (n == "hello-world", n))
    for name in names:
        b = built.get(name)
        size = f"{mb(b[0]):.2f} | {mb(b[1]):.2f} | {verdict(mb(b[1]), GOALS['zip_mb'], ' MB')}" if b else "— | — | not built"
        peak = rss.get(name)
        mem = f"{mb(peak):.1f} | {verdict(mb(peak), GOALS['rss_mb'], ' MB')}" if peak else "— | —"
        w(f"| {name} | {size} | {mem} |")
    w("")

    # 5. Scale
    sc = r["scale"]
    w(f"## 5. Scale ({s['scale_iterations']} invocations of each case, alternating; {sc['other_owners_items']} other owners' conversations in the table)")
    w("")
    w("| request | small case | p50 (ms) | large case | p50 (ms) | ratio | goal |")
    w("|---|---|---:|---|---:|---:|---|")
    for row in sc["rows"]:
        w(f"| {row['what']} | {row['small_case']} | {row['small']['p50_ms']:.3f} | {row['large_case']} | {row['large']['p50_ms']:.3f} | "
          f"{row['p50_ratio']:.2f} | {verdict(row['p50_ratio'], GOALS['scale'])} |")
    w("")

    # 6. Throughput
    w(f"## 6. Throughput ({s['throughput_seconds']:.1f} s per cell; one function process per client, as Lambda runs one request per instance)")
    w("")
    w("| method | clients | requests/s | p50 (ms) | p99 (ms) |")
    w("|---|---:|---:|---:|---:|")
    for t in r["throughput"]:
        w(f"| {t['method']} | {t['clients']} | {t['requests_per_second']:.0f} | {t['latency']['p50_ms']:.2f} | {t['latency']['p99_ms']:.2f} |")
    w("")
    w("The two cores run the clients, every function process and DynamoDB Local (a JVM) at once: throughput here is bounded by the machine, mostly by DynamoDB Local; on AWS each instance has its own CPU and DynamoDB scales on its own.")
    w("")

    # 6b. Baselines
    bl = r.get("baselines")
    if isinstance(bl, list):
        w("## 6b. What users would pick instead (the same harness, table and requests)")
        w("")
        w("get-conversation and create-conversation written the way a Python team writes them (bench/baselines/python: boto3 with a client built at import, awslambdaric's runtime loop) "
          "and a Node.js team (bench/baselines/node: the AWS SDK v3 client built at load; the Runtime API loop of the managed runtime in 30 lines, because aws-lambda-ric's native build needs cmake and autotools), next to ours. "
          "Each makes the DynamoDB requests ours makes on layout 4 (get: one consistent `Query` of the head and the body; create: one `TransactWriteItems` of the head's conditional put and the body's put) and none of the contract's validation. "
          f"{s['cold_starts']} cold starts and {s['warm_invocations']} warm invocations each.")
        w("")
        w("| method | implementation | init p50 (ms) | init + first request p50 (ms) | warm p50 (ms) | warm p99 (ms) | peak RSS (MB) |")
        w("|---|---|---:|---:|---:|---:|---:|")
        for row in bl:
            for i in row["implementations"]:
                w(f"| {row['method']} | {i['implementation']} | {i['init']['p50_ms']:.1f} | {i['init_and_first_request']['p50_ms']:.1f} | "
                  f"{i['warm']['p50_ms']:.2f} | {i['warm']['p99_ms']:.2f} | {(i['peak_rss_bytes'] or 0) / 1e6:.1f} |")
            for key, q in row["ours_over"].items():
                w(f"| {row['method']} | **ours ÷ {'Python' if key == 'python' else 'Node.js'}** | {q['init_p50']:.3f} | {q['init_and_first_request_p50']:.3f} | {q['warm_p50']:.2f} | {q['warm_p99']:.2f} | {q['peak_rss']:.2f} |")
        w("")
    elif isinstance(bl, dict) and bl.get("skipped"):
        w(f"## 6b. What users would pick instead: skipped ({bl['skipped']})")
        w("")

    # 7. Load
    ld = r["load"]
    rb = ld["read_back"]
    w(f"## 7. Load ({ld['clients']} clients × {ld['seconds']:.0f} s of mixed create, patch, append and list; one process per client and function)")
    w("")
    w(f"{ld['requests']} requests, **{ld['requests_per_second']:.0f} requests/s**, "
      f"**{ld['server_errors']} server errors**; "
      + ", ".join(f"{st['count']} × {st['status']}" for st in ld["statuses"])
      + f". Writes refused as contended (409/429) and retried by the client: {ld['refused_then_retried']}; "
      f"given up after 5 retries: {ld['gave_up_after_retries']}.")
    w("")
    w(f"Read back afterwards from DynamoDB: {rb['conversations']} conversations and {rb['messages']} messages; "
      f"every acknowledged display name and message is stored, none twice, orders gap-free, counts equal "
      f"(lost writes: {rb['lost_writes']}, duplicated writes: {rb['duplicated_writes']}).")
    w("")
    w("| operation | requests | p50 (ms) | p99 (ms) |")
    w("|---|---:|---:|---:|")
    for o in ld["operations"]:
        w(f"| {o['operation']} | {o['requests']} | {o['latency']['p50_ms']:.2f} | {o['latency']['p99_ms']:.2f} |")
    w("")

    # 8. Delegation
    dg = r["delegation"]
    w(f"## 8. One service identity: alone, and acting for one end user per client ({ld['clients']} clients, the load of section 7, each client with its own hot conversation)")
    w("")
    w("| run | requests/s | index partition keys written | hottest key's share of writes | writes/s to the hottest key | append p50 (ms) | append p99 (ms) |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for name, label in [("one_caller", "one caller, no delegation"), ("one_caller_for_many_users", "the caller acting for each client's user")]:
        run = dg[name]
        ow = run["owners"]
        append = next(o for o in run["operations"] if o["operation"] == "append")
        w(f"| {label} | {run['requests_per_second']:.0f} | {ow['index_partition_keys']} | {ow['hottest_key_share']:.2f} | "
          f"{ow['hottest_key_writes_per_second']:.0f} | {append['latency']['p50_ms']:.2f} | {append['latency']['p99_ms']:.2f} |")
    w("")
    w("DynamoDB Local has no partitions, so both runs are bound by this machine alike; what differs is where the writes land. "
      "Without delegation every write of the product lands on one partition key of each index, which DynamoDB serves at about "
      "1 000 write units per second (README, \"Acting for end users\"); with delegation each user is its own key.")
    w("")

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines))
    chart(r, built, rss, os.path.join(out, "chart.png"))
    print(f"wrote {os.path.join(out, 'RESULTS.md')} and chart.png")


PARTS = ("table", "by-owner", "by-activity")


def write_cost_lines(wc):
    """The write cost section: every write on a small and on the largest conversation, its write
    units by part in both conventions, the ratio largest ÷ small and the contract's verdict."""
    if not isinstance(wc, dict):
        return []
    lines = []
    w = lines.append
    rule = wc.get("rule", 1.5)
    sizes = wc.get("sizes", {})
    small, large = sizes.get("small", {}), sizes.get("largest", {})
    limits = sizes.get("largest_head_at_limits", {})
    w("### Write cost against conversation size")
    w("")
    w("Every write on a conversation under 1 KB (*small*) and on the largest the contract allows (*largest*: the same conversation "
      "with every large field at its limit — labels, metadata, agents, qualityMetadata, callMetadata, dataSource, sources, phoneNumber, "
      "conversationProfile; the rule's comparison, docs/decisions.md), counted as above, *write units* only (what `PutItem`, `UpdateItem`, "
      "`DeleteItem` and `TransactWriteItems` consume; the reads a write makes — the body read beside a head's write, the pair's `Query` — "
      "are a column of their own). The last column is the same largest conversation with the head's own fields at their limits too "
      "(displayName of 256 characters, category, languageCode, conversationStage, startTime, expireTime, a 63-character id, a requestId): "
      "not the rule's comparison, shown for what those fields cost. Stored sizes: small head "
      f"{small.get('head_bytes_created', '?')} B at create ({small.get('head_bytes_written', '?')} B once written by the writes below), body {small.get('body_bytes', '?')} B; "
      f"largest head {large.get('head_bytes_created', '?')} B ({large.get('head_bytes_written', '?')} B), body {large.get('body_bytes', '?')} B "
      f"({large.get('rendered_kb', '?')} KB rendered); with the head at its limits, head {limits.get('head_bytes_created', '?')} B "
      f"({limits.get('head_bytes_written', '?')} B). "
      "Units are per KB of each item written (rounded up): the table's (a transaction's at 2 per KB), and each index's, "
      "**×2** billing a transaction's index writes twice like its table writes, **×1** once. "
      f"The contract (revision 3, \"Write units independent of the conversation's size\"): ≤ {rule}× on the largest for every write it names; "
      "create, batch append + conversationMetadata and an update naming a large field are not bound (shown for reference). "
      "batch append + conversationMetadata sets one key and removes one on the small conversation; on the largest, whose metadata is at its 16 KiB limit, "
      "it replaces its one key with a value of the same size. update (agents) writes the agents the conversation holds. delete message deletes one message "
      "of the conversation the appends wrote; clear messages clears through one order more each time (one message); complete, delete and purge each act on a conversation created for them, undelete on those deleted.")
    w("")
    w("| write | small ×2 (table / by-owner / by-activity) | largest ×2 (table / by-owner / by-activity) | ratio ×2 | small ×1 | largest ×1 | ratio ×1 | read units small → largest | contract (≤ 1.5×) | head at its limits ×2 (ratio ×2 / ×1) |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")

    def cell(x, suffix):
        part = x.get(f"write_units_by_part{suffix}") or {}
        total = x.get(f"write_units{suffix}", 0)
        return f"{total:.0f} ({' / '.join(f'{part.get(p, 0):.0f}' for p in PARTS)})"

    for c in wc.get("rows", []):
        s_, l_ = c["small"], c["largest"]
        if not c.get("bound_by_rule"):
            verdict_ = "not bound (writes a large field)"
        elif c.get("within_rule"):
            verdict_ = f"met (≤ {rule}× in both)"
        else:
            verdict_ = f"**missed** ({max(c['ratio'], c['ratio_index_once']):.2f}×)"
        h_ = c.get("largest_head_at_limits")
        head = (f"{cell(h_, '')} ({c.get('head_at_limits_ratio', 0):.2f}× / {c.get('head_at_limits_ratio_index_once', 0):.2f}×)"
                if h_ else "—")
        w(f"| {c['write']} | {cell(s_, '')} | {cell(l_, '')} | {c['ratio']:.2f}× | {cell(s_, '_index_once')} | {cell(l_, '_index_once')} | "
          f"{c['ratio_index_once']:.2f}× | {s_['read_units']:.1f} → {l_['read_units']:.1f} | {verdict_} | {head} |")
    w("")
    for name, label in (("small", "small"), ("largest", "largest"), ("largest_head_at_limits", "largest (head at its limits)")):
        attrs = sizes.get(name, {}).get("head_attribute_bytes")
        if attrs:
            w(f"- The {label} conversation's head after the writes ({sizes[name].get('head_bytes_written')} B), by attribute (name and value, bytes): "
              + ", ".join(f"`{a}` {b}" for a, b in attrs) + ".")
    w("")
    return lines


def chart(r, built, rss, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    short = lambda n: n.replace("-conversation", "").replace("conversations", "convs").replace(" (no warm-up)", "*")

    def bars(ax, labels, values, goal, title, ylabel, floor_label=None):
        colors = ["tab:green" if v <= goal else "tab:red" for v in values]
        ax.bar(range(len(values)), values, color=colors)
        ax.axhline(goal, color="black", linestyle="--", linewidth=1, label=f"goal {goal}")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)

    cold = r["cold"][1:]
    bars(axes[0][0], [short(c["function"]) for c in cold], [c["init_ratio"] for c in cold], GOALS["cold"],
         "1. init p50 ÷ hello-world init p50 (* = no warm-up)", "ratio")
    warm = [m for m in r["warm"]["methods"] if m["raw_sdk_latency"]]
    bars(axes[0][1], [short(m["function"]) for m in warm], [m["p50_ratio"] for m in warm], GOALS["warm"],
         "2. warm p50 ÷ raw SDK p50", "ratio")
    names = [n for n in built if n != "hello-world"]
    bars(axes[0][2], [short(n) for n in names], [mb(built[n][1]) for n in names], GOALS["zip_mb"],
         "4. zipped arm64 size", "MB")
    names = [n for n in rss if rss[n] and n != "hello-world"]
    bars(axes[1][0], [short(n) for n in names], [mb(rss[n]) for n in names], GOALS["rss_mb"],
         f"4. peak RSS after {r['warm']['invocations']} invocations", "MB")
    rows = r["scale"]["rows"]
    bars(axes[1][1], [row["what"] for row in rows], [row["p50_ratio"] for row in rows], GOALS["scale"],
         "5. large case p50 ÷ small case p50", "ratio")
    ax = axes[1][2]
    levels = sorted({t["clients"] for t in r["throughput"]})
    for i, method in enumerate(["get", "patch"]):
        values = [next((t["requests_per_second"] for t in r["throughput"] if t["method"] == method and t["clients"] == c), 0) for c in levels]
        ax.bar([x + i * 0.4 for x in range(len(levels))], values, width=0.4, label=method)
    ax.set_xticks([x + 0.2 for x in range(len(levels))])
    ax.set_xticklabels([f"{c} clients" for c in levels])
    ax.set_title("6. throughput through the runtime loop", fontsize=10)
    ax.set_ylabel("requests/s")
    ax.legend(fontsize=8)
    fig.suptitle("Conversations API benchmarks (green: goal met, red: missed)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    main()
