"""Helpers the emulator-backed Python tests share: clients, sample events, the functions' outputs,
and background servers that never outlive the test process."""
import atexit
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EVENTS = os.path.join(ROOT, "events")
TOOLS = os.path.join(ROOT, ".tools", "lambda", "bin")
CSV_HEADER = "transaction_id,account_id,amount,currency,timestamp,merchant,category,country\n"


def client(name, **kwargs):
    return boto3.client(name, region_name="us-east-1", **kwargs)


def stack_outputs(stack):
    """A deployed stack's outputs by key."""
    st = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in st.get("Outputs", [])}


def function_processes(function_name):
    """PIDs of the emulator's local processes running a function (found by their environment)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"AWS_LAMBDA_FUNCTION_NAME={function_name}".encode() in env:
            pids.append(int(pid))
    return pids


def log(message):
    print(message, file=sys.stderr, flush=True)


def event(name):
    with open(os.path.join(EVENTS, name)) as f:
        return json.load(f)


def run(cmd, timeout=300, env=None):
    path = f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"
    merged = {**os.environ, "PATH": path, "SAM_CLI_TELEMETRY": "0", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=merged, cwd=ROOT)


def ndjson_objects(s3, bucket, prefix):
    """Every line of every object under prefix (gzip or plain NDJSON), as parsed JSON."""
    lines = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            if body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            lines += [json.loads(line) for line in body.decode().splitlines()]
    return lines


def s3_event_for(s3, bucket, key, body):
    """The sample S3 notification, naming an object that exists (its real key, size and ETag)."""
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    notification = event("s3-put-notification.json")
    record = notification["Records"][0]["s3"]
    record["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    record["object"].update(key=urllib.parse.quote_plus(key, safe="/"), size=len(body), eTag=etag)
    return notification


def gzip_csv(rows):
    return gzip.compress((CSV_HEADER + "".join(row + "\n" for row in rows)).encode())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """Linux: the child gets SIGTERM when this process ends, however it ends."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


RUNNING = []
# Ctrl-C, SIGTERM (the wrappers' traps) and a normal exit all stop what is still running.
atexit.register(lambda: [proc.stop() for proc in list(RUNNING)])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


class Background:
    """A server process for one test: output to a log file (a full pipe would stall it), ready
    once its port accepts connections, stopped with its whole process group."""

    def __init__(self, name, cmd, host, port, timeout=120, cwd=ROOT, env=None):
        self.log_path = os.path.join(tempfile.gettempdir(), f"runnel-{name}-{port}.log")
        self.log = open(self.log_path, "wb")
        path = f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True,
                                     preexec_fn=_die_with_parent,
                                     env={**os.environ, "PATH": path, "SAM_CLI_TELEMETRY": "0", **(env or {})})
        RUNNING.append(self)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((host, port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{name} did not start listening on {host}:{port}:\n{self.tail()}")
                time.sleep(0.1)

    def tail(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-4000:]

    def stop(self):
        if self in RUNNING:
            RUNNING.remove(self)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


