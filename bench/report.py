"""Prints every benchmark figure of one `make bench` run side by side with the targets, and writes
them as Markdown to target/bench/summary.md (the source of the tables in BENCHMARKS.md).

    python3 bench/report.py target/bench
"""
import glob
import json
import math
import os
import platform
import sys

import cost

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
FUNCTIONS = ["kinesis-processor", "s3-ingest", "failure-alert", "hello"]

# Lambda prices (us-east-1): per request, and per GB-second by architecture.
PRICE_REQUEST = 0.20 / 1e6
PRICE_GB_S = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
MEMORY_MB = 128
# Lambda gives a function CPU in proportion to its memory: one vCPU at 1,769 MB.
FULL_VCPU_MB = 1769


def load(out, name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def cost_per_million(batch_ms, records):
    """Dollars per 1M records at 128 MB, for a CPU-bound batch measured on one full core."""
    billed_ms = math.ceil(batch_ms * FULL_VCPU_MB / MEMORY_MB)
    invocations = 1e6 / records
    return {arch: invocations * (PRICE_REQUEST + billed_ms / 1e3 * MEMORY_MB / 1024 * price)
            for arch, price in PRICE_GB_S.items()}, billed_ms


def criterion_figures():
    rows = []
    for bench in sorted(glob.glob(os.path.join(ROOT, "target", "criterion", "**", "new", "benchmark.json"), recursive=True)):
        with open(bench) as f:
            meta = json.load(f)
        with open(os.path.join(os.path.dirname(bench), "estimates.json")) as f:
            est = json.load(f)
        ns = est["median"]["point_estimate"]
        tp = meta.get("throughput") or {}
        mbps = tp["Bytes"] / ns * 1e3 if "Bytes" in tp else None
        rows.append((meta["full_id"], ns, mbps))
    return rows


def fmt_time(ns):
    return f"{ns / 1e6:.2f} ms" if ns >= 1e6 else f"{ns / 1e3:.2f} µs" if ns >= 1e3 else f"{ns:.0f} ns"


def analytics(md, k, flink, landing):
    """The aggregating path beside the landing path, Flink SQL on the same readings, and the cost
    of the seeds' workload."""
    per_core = lambda ms: k["records"] / (ms / 1e3)
    md.append(f"### Stream analytics: the same {k['records']:,}-record Kinesis event, landing against landing "
              "with the `device_minute` panes and the rules, one core\n")
    md.append("| path | ms | records/s per core | × landing |")
    md.append("| --- | ---: | ---: | ---: |")
    for name, ms in [("landing only (`kinesis_processor::pipeline()`)", k["handler_ms"]),
                     ("landing + `device_minute` panes", k["panes_ms"]),
                     ("landing + panes + rules `too_hot`, `overheating` (the deployed path)", k["panes_rules_ms"])]:
        md.append(f"| {name} | {ms:.2f} | {per_core(ms):,.0f} | {ms / k['handler_ms']:.2f} |")
    if flink:
        small, large = flink["records"]
        md.append(f"| Flink SQL 2.3 (PyFlink, local mini cluster, batch, parallelism 1): the same TUMBLE GROUP BY over "
                  f"the {k['records']:,} curated readings repeated to {large:,}, marginal rate | – | "
                  f"{flink['marginal_records_per_s']:,.0f} | {flink['marginal_records_per_s'] / per_core(k['panes_rules_ms']):.2f} × the deployed path's rate |")
        md.append(f"\nFlink: {small:,} readings in {flink['seconds'][0]:.2f} s and {large:,} in {flink['seconds'][1]:.2f} s "
                  f"(median of {flink['runs']}); the first job in a fresh JVM took {flink['first_job_s']:.1f} s. "
                  "Flink reads the curated lines from a file; Runnel's figures include the Kinesis event's parse and base64.\n")
    md.append(f"Objects per batch of {k['records']:,}: {k['curated_objects']} curated, {k['pane_objects']} pane(s) "
              f"({(k['curated_objects'] + k['pane_objects']) * 1e6 / k['records']:,.0f} per 1M readings at this batch size).")
    if landing and "pane_objects" in landing:
        md.append(f" On the emulator at the template's settings (BatchSize 500): {landing['objects_per_million']:,.0f} curated "
                  f"and {landing['pane_objects_per_million']:,.0f} pane objects per 1M readings.")
    md.append("")
    payload_per_s = per_core(k["panes_rules_ms"]) * k["avg_record_bytes"]
    # Objects per invocation as the benchmark batch wrote them: one curated run and its pane
    # while a batch stays within one hour.
    per_invocation = k["curated_objects"] + k["pane_objects"]
    rows = [(f"Runnel on Lambda, BatchSize {size:,}{note}", cost.lambda_month(payload_per_s, size, per_invocation / size))
            for size, note in ((500, " (the template)"), (3000, " (about 5 MB of 1 KB messages per event, under the 6 MB limit)"))]
    md.append(f"### Monthly cost of {cost.MESSAGES_PER_S:,} messages of 1 KB per second (us-east-1 list prices)\n")
    md.append("| service | requests $ | compute $ | S3 PUTs $ | total $ / month | windows and rules |")
    md.append("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, c in rows:
        md.append(f"| {name} | {c['requests']:,.2f} | {c['compute']:,.2f} | {c['s3_puts']:,.2f} | {c['total']:,.2f} | yes |")
    if flink:
        f = cost.flink_month(flink["marginal_records_per_s"])
        md.append(f"| Managed Service for Apache Flink, {f['kpus']} KPU + 1 orchestration KPU | – | {f['compute']:,.2f} | – | "
                  f"{f['total']:,.2f} (with {f['kpus'] * cost.FLINK_STORAGE_GB_PER_KPU} GB of application storage) | yes |")
    for per_record in (1, 4):
        f = cost.firehose_month(per_record)
        label = ("one message per record, billed as 5 KB" if per_record == 1
                 else f"{per_record} newline-delimited messages per record (under 5 KB)")
        md.append(f"| Firehose Direct PUT, {label} ({f['gb']:,.0f} GB billed) | – | – | – | {f['total']:,.2f} | no (landing only) |")
    md.append(f"\nLambda at {cost.LAMBDA_MEMORY_MB} MB arm64: the deployed path's measured "
              f"{payload_per_s / 1e6:.1f} MB of readings per second per core scaled to 1 KB messages, plus "
              f"{cost.S3_WAIT_S * 1e3:.0f} ms per invocation waiting on S3 (an assumption: not measurable here); the formula is in "
              "`bench/cost.py`. Not included, the same for every row that reads the stream: the Kinesis stream itself.\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "bench")
    k, py, init, init_bundle, init_one_root, mem, ing, ing_py, landing, sources = (load(out, n) for n in (
        "kinesis.json", "python.json", "init.json", "init-bundle.json", "init-one-root.json", "memory.json", "ingest.json",
        "ingest-python.json", "landing.json", "sources.json"))
    flink = load(out, "flink.json")
    md, checks = [], []

    def check(name, value, target, ok):
        checks.append((name, value, target, ok))

    md.append(f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
              f"Python {py['python'] if py else '?'}.\n")
    if k:
        mb = k["event_bytes"] / 1e6
        md.append(f"### Kinesis path, {k['records']:,} records ({k['avg_record_bytes']} B readings), {mb:.2f} MB event, median of {k['runs']} runs\n")
        md.append("| handler | ms | MB/s | records/s | ratio |")
        md.append("| --- | ---: | ---: | ---: | ---: |")
        rows = [("floor: serde_json parse into `KinesisEvent`", k["floor_ms"], f"{1:.2f}"),
                ("(parse into `KinesisBatch`, the handler's lean model)", k["lean_parse_ms"], f"{k['lean_parse_ms'] / k['floor_ms']:.2f} × floor"),
                ("`kinesis-processor` (Rust): parse → gzip NDJSON, in-memory sink", k["handler_ms"], f"{k['handler_ms'] / k['floor_ms']:.2f} × floor")]
        if py:
            rows.append((f"Python {py['python']} + Powertools BatchProcessor, same work", py["handler_ms"],
                         f"{py['handler_ms'] / k['handler_ms']:.1f} × Rust"))
        for name, ms, ratio in rows:
            md.append(f"| {name} | {ms:.2f} | {mb / (ms / 1e3):.1f} | {k['records'] / (ms / 1e3):,.0f} | {ratio} |")
        check("Kinesis path vs parse floor", f"{k['handler_ms'] / k['floor_ms']:.2f}×", "≤ 1.0×", k["handler_ms"] / k["floor_ms"] <= 1.0)
        if py:
            check("Python handler vs Rust", f"{py['handler_ms'] / k['handler_ms']:.1f}×", "≥ 6×", py["handler_ms"] / k["handler_ms"] >= 6)
        md.append("")
        md.append(f"### Cost per 1M records at {MEMORY_MB} MB\n")
        md.append(f"CPU-bound batch time scaled to a {MEMORY_MB} MB function's CPU share ({MEMORY_MB}/{FULL_VCPU_MB} of a vCPU), "
                  f"billed per ms, {1e6 / k['records']:.1f} invocations of {k['records']:,} records per million; "
                  "the S3 PUT and the event transfer are not included (same for both handlers).\n")
        md.append("| handler | billed ms per batch | arm64 $ / 1M records | x86_64 $ / 1M records |")
        md.append("| --- | ---: | ---: | ---: |")
        for name, ms in [("kinesis-processor (Rust)", k["handler_ms"])] + ([("Python + Powertools", py["handler_ms"])] if py else []):
            c, billed = cost_per_million(ms, k["records"])
            md.append(f"| {name} | {billed:,} | {c['arm64']:.6f} | {c['x86_64']:.6f} |")
        md.append("")
    if k and "panes_rules_ms" in k:
        analytics(md, k, flink, landing)
    if sources:
        md.append("### Every other source's path, same readings one per record, against its own parse floor\n")
        md.append("The floor is serde_json parsing the event into the source's `aws_lambda_events` model; the handler "
                  "parses into the source's event type, processes into an in-memory store and serialises its answer, as "
                  "the runtime does (Firehose's answer carries the output). The reader is that first parse alone.\n")
        md.append("| source | event MB | floor ms | reader ms | reader × floor | handler ms | handler × floor |")
        md.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, f in sources.items():
            ratio = f["handler_ms"] / f["floor_ms"]
            reader = f"{f['reader_ms']:.2f} | {f['reader_ms'] / f['floor_ms']:.2f}" if "reader_ms" in f else "– | –"
            md.append(f"| {name} | {f['event_bytes'] / 1e6:.2f} | {f['floor_ms']:.2f} | {reader} | {f['handler_ms']:.2f} | {ratio:.2f} |")
            check(f"{name} path vs its parse floor", f"{ratio:.2f}×", "≤ 1.0×", ratio <= 1.0)
        md.append("")
    if ing:
        mb = ing["csv_bytes"] / 1e6
        md.append(f"### s3-ingest path on one core, in memory: {mb:.0f} MB CSV ({ing['rows']:,} rows, "
                  f"{ing['gzip_bytes'] / 1e6:.1f} MB gzip), median of {ing['runs']} runs\n")
        md.append("| work | s | MB/s of CSV per core | ratio |")
        md.append("| --- | ---: | ---: | ---: |")
        md.append(f"| floor: gunzip + gzip level 1 of the CSV | {ing['floor_s']:.3f} | {ing['floor_mb_s']:.1f} | 1.00 |")
        md.append(f"| output floor: gunzip + gzip level 1 of the {ing['ndjson_bytes'] / 1e6:.0f} MB of NDJSON written | "
                  f"{ing['output_floor_s']:.3f} | {mb / ing['output_floor_s']:.1f} | {ing['output_floor_s'] / ing['floor_s']:.2f} × floor |")
        md.append(f"| `s3-ingest` (Rust): gunzip → CSV → validate → transform → NDJSON → gzip → multipart, in-memory store | "
                  f"{ing['handler_s']:.3f} | {ing['handler_mb_s']:.1f} | {ing['ratio']:.2f} × floor, {ing['output_ratio']:.2f} × output floor |")
        if ing_py:
            md.append(f"| Python {ing_py['python']} csv + json + gzip, same work | {ing_py['seconds']:.3f} | {ing_py['mb_s']:.1f} | "
                      f"{ing['handler_mb_s'] / ing_py['mb_s']:.1f} × slower than Rust |")
        md.append("")
        check("s3-ingest path vs codec floor", f"{ing['ratio']:.2f}×", "≤ 1.5×", ing["ratio"] <= 1.5)
        if ing_py:
            check("Python ingest vs Rust", f"{ing['handler_mb_s'] / ing_py['mb_s']:.1f}×", "≥ 10×", ing["handler_mb_s"] / ing_py["mb_s"] >= 10)
    if init:
        md.append("### Init time: process start → first `GET /runtime/invocation/next`, median\n")
        md.append("| binary | init ms, this host's CA store | × hello world | init ms, one CA bundle file (provided.al2023 layout) "
                  "| × hello world | init ms, a bundle of one root (roots' loading taken out) | × hello world | RSS after init MiB |")
        md.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        bundle = {r["name"]: r for r in (init_bundle or [])}
        one_root = {r["name"]: r for r in (init_one_root or [])}

        def cells(row):
            return f"{row['init_ms']:.2f} | {row['ratio']:.2f}" if row else "– | –"

        for r in init:
            b = bundle.get(r["name"])
            md.append(f"| {r['name']} | {cells(r)} | {cells(b)} | {cells(one_root.get(r['name']))} | {r['rss_kib'] / 1024:.1f} |")
            if r["name"] != init[0]["name"]:
                check(f"init {r['name']} vs hello world (this host)", f"{r['ratio']:.2f}×", "≤ 1.3×", r["ratio"] <= 1.3)
                if b:
                    check(f"init {r['name']} vs hello world (one CA bundle)", f"{b['ratio']:.2f}×", "≤ 1.3×", b["ratio"] <= 1.3)
        md.append("")
    if mem:
        md.append("### Peak RSS (VmHWM) of the release bootstraps, S3 on the emulator\n")
        md.append("| function | input | time s | peak RSS MiB |")
        md.append("| --- | --- | ---: | ---: |")
        if "kinesis" in mem:
            km = mem["kinesis"]
            md.append(f"| kinesis-processor | {km['event_bytes'] / 1e6:.2f} MB event, {km['records']:,} records | {km['seconds']:.2f} | {km['peak_rss_kib'] / 1024:.1f} |")
            check("kinesis-processor peak RSS, 6 MB event", f"{km['peak_rss_kib'] * 1024 / 1e6:.1f} MB", "≤ 40 MB", km["peak_rss_kib"] * 1024 / 1e6 <= 40)
        for r in mem.get("s3_ingest", []):
            md.append(f"| s3-ingest | {r['csv_mb']:,} MB CSV ({r['gzip_bytes'] / 1e6:.1f} MB gzip, {r['rows']:,} rows) | {r['seconds']:.1f} | {r['peak_rss_kib'] / 1024:.1f} |")
        big = [r for r in mem.get("s3_ingest", []) if r["csv_mb"] >= 1000]
        if big:
            check("s3-ingest peak RSS, 1 GB input", f"{big[-1]['peak_rss_kib'] / 1024:.1f} MiB", "≤ 32 MiB", big[-1]["peak_rss_kib"] / 1024 <= 32)
        md.append("")
    if landing:
        md.append("### Landing on the emulator at the template's batch settings (BatchSize 500, BatchingWindowSeconds 5)\n")
        md.append("| readings | curated objects | objects per 1M readings | hourly partitions | latency p50 s | latency p99 s |")
        md.append("| ---: | ---: | ---: | ---: | ---: | ---: |")
        md.append(f"| {landing['readings']:,} | {landing['objects']:,} | {landing['objects_per_million']:,.0f} | "
                  f"{landing['partitions']} | {landing['latency_p50_s']:.1f} | {landing['latency_p99_s']:.1f} |")
        md.append("\nLatency: a reading's arrival in the stream to the `LastModified` of the curated object holding it "
                  "(1 s resolution); the emulator's mapping polls the shard like Lambda's, but its timing is not AWS's.\n")
    sizes = [(n, os.path.getsize(os.path.join(RELEASE, n))) for n in FUNCTIONS if os.path.exists(os.path.join(RELEASE, n))]
    if sizes:
        md.append("### Release binary sizes (stripped, LTO)\n")
        md.append(" · ".join(f"`{n}` {s / 1e6:.1f} MB" for n, s in sizes) + "\n")
        for n, size in sizes:
            if n != "hello":
                check(f"{n} bootstrap size", f"{size / 1e6:.1f} MB", "≤ 10 MB", size / 1e6 <= 10)
    crit = criterion_figures()
    if crit:
        md.append("### Hot paths (criterion, median)\n")
        md.append("| benchmark | time | throughput |")
        md.append("| --- | ---: | ---: |")
        for name, ns, mbps in crit:
            md.append(f"| {name} | {fmt_time(ns)} | {f'{mbps:.0f} MB/s' if mbps else ''} |")
        md.append("")
    if checks:
        md.append("### Targets\n")
        md.append("| target | measured | goal | met |")
        md.append("| --- | ---: | ---: | --- |")
        for name, value, target, ok in checks:
            md.append(f"| {name} | {value} | {target} | {'yes' if ok else 'no'} |")
    text = "\n".join(md) + "\n"
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"(written to {os.path.join(out, 'summary.md')})")


if __name__ == "__main__":
    main()
