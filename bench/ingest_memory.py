"""Peak memory (VmHWM) of the release `s3-ingest` bootstrap while it streams generated gzip CSV
objects of several sizes from the emulator's S3. Each size runs in a fresh process behind a local
Runtime API (cargo-lambda), so each peak is that object's alone.

    scripts/with-emulator .tools/lambda/bin/python bench/ingest_memory.py [SIZE_MB ...]

Needs `make sam-build` (the x86_64 release bootstrap) and cargo-lambda on PATH (.tools/lambda/bin).
"""
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
BOOTSTRAP = os.path.join(ROOT, "infra", ".aws-sam", "build", "S3IngestFunction", "bootstrap")
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


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [10, 1000]
    if not os.path.exists(BOOTSTRAP):
        sys.exit(f"{BOOTSTRAP} is missing: run `make sam-build` first")
    s3 = boto3.client("s3", region_name="us-east-1")
    suffix = str(int(time.time()))
    raw, curated = f"mem-raw-{suffix}", f"mem-curated-{suffix}"
    s3.create_bucket(Bucket=raw)
    s3.create_bucket(Bucket=curated)
    port = free_port()
    api = subprocess.Popen(["cargo", "lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = []
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        for mb in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "day.csv.gz")
                rows = csv_gz(mb, path)
                key = f"transactions/dt=2026-11-22/day-{mb}mb.csv.gz"
                s3.upload_file(path, raw, key)
                gz_bytes = os.path.getsize(path)
            env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"http://127.0.0.1:{port}/.rt", AWS_LAMBDA_FUNCTION_NAME="_",
                       AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512", CURATED_BUCKET=curated,
                       AWS_LAMBDA_LOG_LEVEL="WARN")
            fn = subprocess.Popen([BOOTSTRAP], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            event = {"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {"name": raw}, "object": {"key": key}}}
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump(event, f)
            t = time.time()
            out = subprocess.run(["cargo", "lambda", "invoke", "--invoke-address", "127.0.0.1", "--invoke-port", str(port), "--data-file", f.name, "_"],
                                 cwd=ROOT, capture_output=True, text=True, timeout=1800)
            seconds = time.time() - t
            peak = peak_kib(fn.pid)
            fn.kill()
            fn.wait()
            os.unlink(f.name)
            answer = json.loads(out.stdout)
            status = answer["objects"][0]
            assert status["rows_out"] == rows, status
            results.append((mb, gz_bytes, rows, seconds, peak))
            print(f"s3-ingest {mb:>5} MB CSV ({gz_bytes / 1e6:7.1f} MB gzip, {rows} rows): {seconds:6.1f} s, peak RSS {peak / 1024:6.1f} MiB", flush=True)
    finally:
        api.kill()
    if len(results) >= 2:
        print(f"peak RSS ratio largest/smallest: {results[-1][4] / results[0][4]:.2f}")


if __name__ == "__main__":
    main()
