"""Runs the device_minute aggregate in Flink SQL (PyFlink, a local mini cluster, batch mode) over
the readings Runnel landed, and compares Flink's rows with Runnel's merged panes.

    .tools/flink/bin/python scripts/flink-compare.py DIR

DIR holds readings.ndjson and runnel.json (written by the flink-inputs binary). Counts, minima,
maxima and the highest humidity must be equal; sums equal to the cent (Flink sums the two-decimal
temperatures as DECIMAL, Runnel as doubles, rounded here to two decimals); means within 1e-9
relative; distinct temperatures within three standard errors of Runnel's sketch (1.6 %) or one.
Exits non-zero on any difference.
"""
import decimal
import json
import os
import sys
import time

from flink_device_minute import batch_environment, create_readings, device_minute


def main():
    directory = sys.argv[1]
    started = time.time()
    env = batch_environment(parallelism=2)
    create_readings(env, "readings", os.path.join(directory, "readings.ndjson"))
    result = env.execute_sql(device_minute("readings"))
    flink = {}
    with result.collect() as rows:
        for r in rows:
            flink[(r[0], r[1])] = r
    with open(os.path.join(directory, "runnel.json")) as f:
        runnel = {(r["device_id"], r["window_start"]): r for r in json.load(f)}
    problems = []
    if flink.keys() != runnel.keys():
        missing, extra = flink.keys() - runnel.keys(), runnel.keys() - flink.keys()
        problems.append(f"{len(runnel)} device-minutes in Runnel, {len(flink)} in Flink "
                        f"(Runnel lacks {sorted(missing)[:3]}, has extra {sorted(extra)[:3]})")
    cent = decimal.Decimal("0.01")
    for key in sorted(flink.keys() & runnel.keys()):
        f, r = flink[key], runnel[key]
        _, _, n, t_min, t_max, t_sum, t_mean, h_max, distinct = f
        checks = {
            "readings": r["readings"] == n and r["temperature_c_count"] == n,
            "temperature_c_min": r["temperature_c_min"] == t_min,
            "temperature_c_max": r["temperature_c_max"] == t_max,
            "temperature_c_sum": decimal.Decimal(repr(r["temperature_c_sum"])).quantize(cent) == decimal.Decimal(t_sum),
            "temperature_c_mean": abs(r["temperature_c_mean"] - t_mean) <= 1e-9 * max(abs(t_mean), 1e-300),
            "humidity_max": r["humidity_max"] == h_max,
            "temperature_values": abs(r["temperature_values"] - distinct) <= max(1, 0.049 * distinct),
        }
        wrong = [name for name, ok in checks.items() if not ok]
        if wrong:
            problems.append(f"{key}: {wrong} differ: Runnel {r}, Flink {list(f)}")
            if len(problems) > 5:
                break
    total = sum(r["readings"] for r in runnel.values())
    print(f"flink-compare: {len(flink)} device-minutes in Flink SQL, {len(runnel)} merged by Runnel, "
          f"{total} readings, {time.time() - started:.0f} s")
    if problems:
        for p in problems:
            print(f"FLINK MISMATCH: {p}", file=sys.stderr)
        sys.exit(1)
    print("flink-compare: every row equal")


if __name__ == "__main__":
    main()
