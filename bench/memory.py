"""Peak memory (VmHWM) of the release bootstraps behind a local Runtime API (cargo-lambda), with S3
on the emulator:
- kinesis-processor on the 6 MB benchmark event (written by `kinesis-throughput --write-event`);
- s3-ingest streaming generated gzip CSV objects of several sizes (10 MB vs 1 GB: flat is the goal).
Each run is a fresh process, so each peak is that input's alone.

    scripts/with-emulator .tools/lambda/bin/python bench/memory.py --event FILE [--json OUT] [SIZE_MB ...]

Needs `cargo build --release` of both functions and cargo-lambda on PATH (.tools/lambda/bin).
"""
import argparse
import gzip
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
# The allocator setting infra/template.yaml deploys s3-ingest with (see the comment there).
INGEST_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}
HEADER = "transaction_id,account_id,amount,currency,timestamp,merchant,category,country\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def csv_gz(target_mb, path):
    rng = random.Random(1)
    written = 0
    with gzip.open(path, "wt", compresslevel=1) as f:
        f.write(HEADER)
        i = 0
        while written < target_mb * 1_000_000:
            line = f"tx-{i:09},acc-{rng.randrange(5000):05},{rng.randrange(1, 100000) / 100:.2f},EUR,2026-11-22T{i % 24:02}:{i % 60:02}:00Z,Merchant {rng.randrange(900)},groceries,DE\n"
            f.write(line)
            written += len(line)
            i += 1
    return i


def peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def start_api(port):
    api = subprocess.Popen(["cargo", "lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        if api.poll() is not None:
            sys.exit(f"cargo lambda watch exited ({api.returncode}); is cargo-lambda on PATH (.tools/lambda/bin)?")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return api
        except OSError:
            time.sleep(0.1)
    api.kill()
    sys.exit("cargo lambda watch did not open its Runtime API port within 60 s")


def run_function(binary, port, env, event_file):
    """Starts the bootstrap, invokes it once with the event file, returns (answer, seconds, peak KiB)."""
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"http://127.0.0.1:{port}/.rt", AWS_LAMBDA_FUNCTION_NAME="_",
               AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128", AWS_LAMBDA_LOG_LEVEL="WARN", **env)
    fn = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t = time.time()
        out = subprocess.run(["cargo", "lambda", "invoke", "--invoke-address", "127.0.0.1", "--invoke-port", str(port), "--data-file", event_file, "_"],
                             cwd=ROOT, capture_output=True, text=True, timeout=3600)
        seconds = time.time() - t
        peak = peak_kib(fn.pid)
    finally:
        fn.kill()
        fn.wait()
    if out.returncode != 0:
        sys.exit(f"invoking {os.path.basename(binary)} failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout), seconds, peak


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--event", help="the Kinesis benchmark event; omit to skip kinesis-processor")
    parser.add_argument("--json")
    parser.add_argument("sizes", nargs="*", type=int, default=[10, 1000], help="s3-ingest input sizes in MB of CSV")
    args = parser.parse_args()
    for name in ("kinesis-processor", "s3-ingest"):
        if not os.path.exists(os.path.join(RELEASE, name)):
            sys.exit(f"{RELEASE}/{name} is missing: run `cargo build --release -p {name}` first")
    s3 = boto3.client("s3", region_name="us-east-1")
    suffix = str(int(time.time()))
    raw, curated = f"mem-raw-{suffix}", f"mem-curated-{suffix}"
    s3.create_bucket(Bucket=raw)
    s3.create_bucket(Bucket=curated)
    port = free_port()
    api = start_api(port)
    figures = {"s3_ingest": []}
    try:
        if args.event:
            records = len(json.load(open(args.event))["Records"])
            answer, seconds, peak = run_function(os.path.join(RELEASE, "kinesis-processor"), port,
                                                 {"OUTPUT_BUCKET": curated, "OUTPUT_PREFIX": "iot"}, args.event)
            if answer.get("batchItemFailures"):
                sys.exit(f"kinesis-processor reported failures: {answer['batchItemFailures'][:3]}")
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=curated, Prefix="iot/").get("Contents", [])]
            if not keys:
                sys.exit("kinesis-processor wrote nothing")
            size = os.path.getsize(args.event)
            figures["kinesis"] = {"event_bytes": size, "records": records, "seconds": seconds, "peak_rss_kib": peak}
            print(f"kinesis-processor {size / 1e6:.2f} MB event ({records} records → {len(keys)} object(s) in S3): "
                  f"{seconds:.2f} s, peak RSS {peak / 1024:.1f} MiB", flush=True)
        for mb in args.sizes:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "day.csv.gz")
                rows = csv_gz(mb, path)
                key = f"transactions/dt=2026-11-22/day-{mb}mb.csv.gz"
                s3.upload_file(path, raw, key)
                gz_bytes = os.path.getsize(path)
                event = {"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {"name": raw}, "object": {"key": key}}}
                event_file = os.path.join(tmp, "event.json")
                with open(event_file, "w") as f:
                    json.dump(event, f)
                answer, seconds, peak = run_function(os.path.join(RELEASE, "s3-ingest"), port, INGEST_ENV | {"OUTPUT_BUCKET": curated}, event_file)
            status = answer["objects"][0]
            if status["rows_out"] != rows:
                sys.exit(f"s3-ingest wrote {status['rows_out']} of {rows} rows: {status}")
            figures["s3_ingest"].append({"csv_mb": mb, "gzip_bytes": gz_bytes, "rows": rows, "seconds": seconds, "peak_rss_kib": peak})
            print(f"s3-ingest {mb:>5} MB CSV ({gz_bytes / 1e6:7.1f} MB gzip, {rows} rows): {seconds:6.1f} s, peak RSS {peak / 1024:6.1f} MiB", flush=True)
    finally:
        api.kill()
    runs = figures["s3_ingest"]
    if len(runs) >= 2:
        print(f"s3-ingest peak RSS ratio largest/smallest input: {runs[-1]['peak_rss_kib'] / runs[0]['peak_rss_kib']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
