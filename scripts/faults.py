#!/usr/bin/env python3
"""The fault campaign (make faults): N seeded, reproducible runs of the stream pipeline against the
deployed kinesis-processor, with its S3 traffic through scripts/fault-proxy.py (503 SlowDown,
connection resets, slow answers) and its process killed mid-run. Each run checks that every
valid reading landed exactly once by `_id`, every bad record is in quarantine once, and nothing
else landed. Prints one line per run and "N runs, L lost, D duplicated".

The batches are delivered here, by Lambda's contract for Kinesis (the emulator's own mapping
ignores partial batch responses): records in order from a checkpoint; a function error retries
the same batch; a partial batch response moves the checkpoint to the lowest reported record.

Runs inside scripts/with-emulator with the stack deployed (scripts/faults does both)."""

import argparse
import base64
import datetime
import gzip
import json
import os
import random
import signal
import sys
import threading
import time
import urllib.request

import boto3
import botocore.config

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra", "tests"))
from support import function_processes, ndjson_objects, stack_outputs as outputs  # noqa: E402

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
MAX_ATTEMPTS = 40  # per batch; far beyond what the fault rates here need


def client(name, **kw):
    # Straight to the emulator: only the function's S3 traffic goes through the proxy.
    return boto3.client(name, region_name="us-east-1", endpoint_url=ENDPOINT, **kw)


def readings(rng, day, count, poison):
    """(partition key, bytes, valid) for count readings with poison records among them."""
    out = []
    for i in range(count):
        reading = {"device_id": f"sensor-{rng.randrange(500):04d}", "ts": f"{day}T{i % 24:02d}:{rng.randrange(60):02d}:00Z",
                   "temperature": round(rng.uniform(-20, 40), 2), "unit": "C", "humidity": round(rng.uniform(20, 90), 1)}
        data = json.dumps(reading).encode()
        if rng.random() < 0.2:
            data = gzip.compress(data)
        out.append((reading["device_id"], data, True))
    bad = [b'{"device_id": "sensor-0001", "ts":', json.dumps({"device_id": "sensor-0002", "ts": f"{day}T01:00:00Z", "temperature": 900}).encode(),
           b"\x1f\x8b\x08\x00 not gzip", json.dumps({"device_id": "", "ts": f"{day}T02:00:00Z", "temperature": 20}).encode()]
    for p in range(poison):
        out.insert(rng.randrange(len(out) + 1), (f"poison-{p}", rng.choice(bad), False))
    return out


def event(records, shard, arn):
    return {"Records": [{
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": r["PartitionKey"], "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode(), "approximateArrivalTimestamp": round(r["ApproximateArrivalTimestamp"].timestamp(), 3)},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{shard}:{r['SequenceNumber']}", "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::000000000000:role/faults", "awsRegion": "us-east-1", "eventSourceARN": arn} for r in records]}


class Mapping:
    """Delivers a shard's records to the function as Lambda's Kinesis mapping does."""

    def __init__(self, kinesis, lam, function, stream, arn, shard):
        self.kinesis, self.lam, self.function, self.stream, self.arn, self.shard = kinesis, lam, function, stream, arn, shard
        self.after = None  # the last record done
        self.invocations = self.errors = self.partial = 0

    def read(self, at, batch):
        kind = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": at} if at else (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": self.after} if self.after else {"ShardIteratorType": "TRIM_HORIZON"})
        it = self.kinesis.get_shard_iterator(StreamName=self.stream, ShardId=self.shard, **kind)["ShardIterator"]
        return self.kinesis.get_records(ShardIterator=it, Limit=batch)["Records"]

    def deliver(self, total, batch):
        """Delivers until `total` records are done; returns whether every batch completed."""
        done, at = 0, None
        while done < total:
            records = self.read(at, batch)
            if not records:
                time.sleep(0.2)
                continue
            payload = json.dumps(event(records, self.shard, self.arn)).encode()
            for attempt in range(MAX_ATTEMPTS):
                self.invocations += 1
                try:
                    out = self.lam.invoke(FunctionName=self.function, Payload=payload)
                    body = out["Payload"].read()
                    failed = None if out.get("FunctionError") else json.loads(body).get("batchItemFailures") or []
                except Exception:  # the process was killed mid-invocation, the connection dropped
                    failed = None
                if failed is None:
                    self.errors += 1
                    time.sleep(min(0.1 * 2 ** attempt, 2))
                    continue
                break
            else:
                return False  # the mapping would give up on the batch here
            seqs = [r["SequenceNumber"] for r in records]
            if failed:
                self.partial += 1
                lowest = min((f["itemIdentifier"] for f in failed), key=lambda s: (len(s), s))
                index = seqs.index(lowest)
                done += index
                self.after = seqs[index - 1] if index else self.after
                at = lowest
            else:
                done += len(records)
                self.after, at = seqs[-1], None
        return True


def proxy(url, **params):
    """Sets the proxy's faults; returns what it counted since the last setting."""
    with urllib.request.urlopen(f"{url}/_faults/stats", timeout=10) as r:
        stats = json.loads(r.read())
    query = "&".join(f"{k}={v}" for k, v in params.items())
    with urllib.request.urlopen(f"{url}/_faults?{query}", timeout=10) as r:
        r.read()
    return stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stack", default="runnel-faults")
    ap.add_argument("--proxy", required=True)
    args = ap.parse_args()
    out = outputs(args.stack)
    kinesis, s3 = client("kinesis"), client("s3")
    lam = client("lambda", config=botocore.config.Config(read_timeout=300, retries={"max_attempts": 0}))
    function, curated, quarantine = out["KinesisProcessorFunctionName"], out["CuratedBucketName"], out["QuarantineBucketName"]
    stream = f"faults-{int(time.time())}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    mapping = Mapping(kinesis, lam, function, stream, arn, shard)
    lost = duplicated = unexpected = 0
    started = time.time()
    for run in range(args.runs):
        rng = random.Random(args.seed * 100_003 + run)
        day = (datetime.date(2031, 1, 1) + datetime.timedelta(days=run)).isoformat()
        count, poison = rng.randint(20, 150), rng.randint(0, 3)
        batch = rng.choice([5, 10, 25, 50, 100])
        rate = rng.choice([0.0, 0.05, 0.1, 0.2, 0.3])
        kinds = rng.choice(["slowdown,reset,slow", "slowdown", "reset", "slow,slowdown", "reset,slowdown"])
        kills = rng.choice([0, 0, 1, 2])
        outage = rng.choice([0.0, 0.0, 1.0, 3.0])  # seconds S3 is unreachable mid-run
        records = readings(rng, day, count, poison)
        put = kinesis.put_records(StreamName=stream, Records=[{"Data": d, "PartitionKey": k} for k, d, _ in records])
        assert put["FailedRecordCount"] == 0, put
        seqs = [r["SequenceNumber"] for r in put["Records"]]
        good = {f"{shard}:{s}:0" for s, (_, _, ok) in zip(seqs, records) if ok}
        bad = {f"{shard}:{s}:0" for s, (_, _, ok) in zip(seqs, records) if not ok}
        proxy(args.proxy, rate=rate, seed=rng.randrange(1 << 30), kinds=kinds)
        stop, killed = threading.Event(), []

        def killer():
            if outage and not stop.wait(rng.uniform(0.05, 0.4)):
                urllib.request.urlopen(f"{args.proxy}/_faults/outage?seconds={outage}", timeout=10).read()
            for _ in range(kills):
                if stop.wait(rng.uniform(0.05, 0.6)):
                    return
                for pid in function_processes(function):
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                    except ProcessLookupError:
                        pass

        thread = threading.Thread(target=killer, daemon=True)
        before = (mapping.invocations, mapping.errors, mapping.partial)
        thread.start()
        completed = mapping.deliver(len(records), batch)
        stop.set()
        thread.join()
        stats = proxy(args.proxy, rate=0)
        docs = [d["_id"] for d in ndjson_objects(s3, curated, f"iot/dt={day}/")]
        entries = [d["_id"] for d in ndjson_objects(s3, quarantine, "quarantine/iot/") if d["_id"] in bad]
        run_lost = len(good - set(docs)) + len(bad - set(entries))
        run_dup = (len(docs) - len(set(docs))) + (len(entries) - len(set(entries)))
        run_other = len(set(docs) - good)
        lost, duplicated, unexpected = lost + run_lost, duplicated + run_dup, unexpected + run_other
        inv, err, part = (a - b for a, b in zip((mapping.invocations, mapping.errors, mapping.partial), before))
        faults = stats["slowdown"] + stats["reset"] + stats["slow"] + stats.get("outage", 0)
        print(f"run {run + 1:3d}: {count:3d} readings + {poison} bad, batches of {batch:3d}, {rate:4.0%} faults "
              f"({faults} of {stats['requests']} S3 requests: {kinds}{f', {outage:.0f} s down' if outage else ''}), {len(killed)} kills, {inv} invocations "
              f"({err} failed, {part} partial){'' if completed else ', a batch given up'} -> {run_lost} lost, {run_dup} duplicated"
              + (f", {run_other} unexpected" if run_other else ""), flush=True)
    print(f"{args.runs} runs, {lost} lost, {duplicated} duplicated" + (f", {unexpected} unexpected" if unexpected else "")
          + f" ({time.time() - started:.0f} s, seed {args.seed})")
    sys.exit(1 if lost or duplicated or unexpected else 0)


if __name__ == "__main__":
    main()
