"""Times the Python Powertools handler on the benchmark event: from the raw event bytes (parsed
with json.loads, as the Python runtime does before calling a handler) to gzip objects in memory.
Median of several runs after two warm-ups, in one process.

    python bench/python/measure.py EVENT_FILE [--runs N] [--json OUT]
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import powertools_handler  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("event")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json")
    args = parser.parse_args()
    with open(args.event, "rb") as f:
        raw = f.read()
    records = len(json.loads(raw)["Records"])
    times = []
    for run in range(args.runs + 2):
        powertools_handler.STORE.clear()
        t = time.perf_counter()
        response = powertools_handler.handler(json.loads(raw), None)
        elapsed = time.perf_counter() - t
        if response["batchItemFailures"] or powertools_handler.handler.written != records:
            sys.exit(f"the Python handler did not process the batch cleanly: {response}, {powertools_handler.handler.written} written")
        if run >= 2:
            times.append(elapsed)
    ms = statistics.median(times) * 1e3
    out_bytes = sum(len(v) for v in powertools_handler.STORE.values())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"python {sys.version.split()[0]} + powertools: {ms:8.2f} ms {len(raw) / 1e6 / (ms / 1e3):8.1f} MB/s "
          f"{records / (ms / 1e3):10.0f} records/s (median of {args.runs}); process peak RSS {peak_kib / 1024:.1f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "handler_ms": ms, "runs": args.runs, "records": records,
                       "output_bytes": out_bytes, "peak_rss_kib": peak_kib}, f, indent=2)


if __name__ == "__main__":
    main()
