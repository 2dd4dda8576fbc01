"""Flink SQL's throughput on the device_minute aggregate (the query of make flink-check) over the
curated readings the Rust benchmark landed, on this machine: a local mini cluster in batch mode,
parallelism 1 (one task slot; the JVM's compiler and collector threads run beside it).

    .tools/flink/bin/python bench/python/flink_throughput.py CURATED.ndjson [--copies 20 200]
        [--runs 3] [--json FILE]

Each size is the readings file repeated COPIES times; every job reads its file and writes the
rows to a blackhole sink (no result is shipped to Python). The first job in the JVM is timed
apart (start-up and class loading); then each size is run RUNS times, median. The marginal rate,
(records of the large input - records of the small one) / (its seconds - the small one's),
leaves out what every job pays whatever its size (planning, deployment to the mini cluster).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
from flink_device_minute import batch_environment, create_readings, device_minute  # noqa: E402


def timed_job(env, name, path):
    """Seconds for one job: the aggregate over the file at `path` into a blackhole table."""
    create_readings(env, name, path)
    env.execute_sql(f"""
        CREATE TABLE {name}_rows (
            device_id STRING, window_start STRING, readings BIGINT, t_min DOUBLE, t_max DOUBLE,
            t_sum STRING, t_mean DOUBLE, humidity_max DOUBLE, distinct_temperatures BIGINT
        ) WITH ('connector' = 'blackhole')
    """)
    started = time.perf_counter()
    env.execute_sql(f"INSERT INTO {name}_rows {device_minute(name)}").wait()
    seconds = time.perf_counter() - started
    env.execute_sql(f"DROP TABLE {name}")
    env.execute_sql(f"DROP TABLE {name}_rows")
    return seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("curated")
    parser.add_argument("--copies", type=int, nargs=2, default=[20, 200])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    with open(args.curated, "rb") as f:
        lines = f.read()
    per_copy = lines.count(b"\n")
    if per_copy == 0:
        sys.exit(f"flink-throughput: {args.curated} holds no readings")
    env = batch_environment(parallelism=1)
    with tempfile.TemporaryDirectory() as work:
        paths = {}
        for copies in args.copies:
            paths[copies] = os.path.join(work, f"readings-{copies}.ndjson")
            with open(paths[copies], "wb") as f:
                for _ in range(copies):
                    f.write(lines)
        small, large = args.copies
        first = timed_job(env, "first_job", paths[small])
        medians = {}
        for copies in args.copies:
            medians[copies] = statistics.median(
                timed_job(env, f"readings_{copies}_{run}", paths[copies]) for run in range(args.runs))
    records = {copies: copies * per_copy for copies in args.copies}
    marginal = (records[large] - records[small]) / (medians[large] - medians[small])
    print(f"first job in a fresh JVM, {records[small]:,} readings: {first:.2f} s")
    for copies in args.copies:
        print(f"{records[copies]:>10,} readings: {medians[copies]:.2f} s, "
              f"{records[copies] / medians[copies]:,.0f} readings/s (median of {args.runs})")
    print(f"marginal: {marginal:,.0f} readings/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"per_copy": per_copy, "copies": args.copies, "records": list(records.values()),
                       "seconds": [medians[c] for c in args.copies], "first_job_s": first,
                       "marginal_records_per_s": marginal, "runs": args.runs}, f, indent=2)


if __name__ == "__main__":
    main()
