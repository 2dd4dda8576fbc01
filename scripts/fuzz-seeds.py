#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs, made from the sample events in events/, into
<out>/<target>/ (one file per seed). Usage: fuzz-seeds.py <out dir>."""

import base64
import gzip
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

# batch_event's first byte picks the source (fuzz/fuzz_targets/batch_event.rs).
SOURCES = {"sqs": 0, "dynamodb": 1, "firehose": 2, "kafka": 3}

ROWS_CSV = (
    b"transaction_id,account_id,amount,currency,timestamp,merchant,category,country\n"
    b"t-1,a-1,12.50,EUR,2026-11-30T10:15:00Z,Bakery,food,DE\n"
    b"t-2,a-2,1000,JPY,2026-11-30T10:16:00+09:00,Shop,,JP\n"
    b"t-3,a-3,not-a-number,USD,yesterday,Store,misc,US\n"
)
ROWS_NDJSON = (
    b'{"transaction_id":"t-1","account_id":"a-1","amount":"12.50","currency":"EUR",'
    b'"timestamp":"2026-11-30T10:15:00Z","merchant":"Bakery"}\n'
    b'{"transaction_id":"t-2","amount":"x"}\n'
)
TIMES = [
    "2026-11-30T10:15:00Z",
    "2026-11-30T10:15:00.123456789+05:30",
    " 2026-02-29T00:00:00-00:00 ",
    "1764497700000",
    "-62135596800000",
    "9999-12-31T23:59:59Z",
    '"2026-11-30T10:15:00Z"',
]


def data_fields(event):
    """The base64 payloads of an event's records, decoded."""
    records = event.get("Records") or event.get("records") or []
    if isinstance(records, dict):  # Kafka: topic-partition -> records
        records = [r for rs in records.values() for r in rs]
    for r in records:
        for b64 in (r.get("kinesis", {}).get("data"), r.get("data"), r.get("value")):
            if isinstance(b64, str):
                yield base64.b64decode(b64)
        if isinstance(r.get("body"), str):
            yield r["body"].encode()


def seeds():
    for path in sorted(EVENTS.glob("*.json")):
        raw = path.read_bytes()
        name = path.stem
        kind = name.split("-")[0]
        if kind == "kinesis":
            yield "kinesis_event", name, raw
            yield "kinesis_models", name, raw
        if kind == "sqs" and not name.startswith("sqs-s3"):
            yield "sqs_models", name, raw
        if kind == "kafka":
            yield "kafka_models", name, raw
        if kind == "firehose":
            yield "firehose_models", name, raw
        if kind == "dynamodb":
            yield "dynamodb_models", name, raw
        if kind in SOURCES and not name.startswith("sqs-s3"):
            yield "batch_event", name, bytes([SOURCES[kind]]) + raw
        if kind == "s3" or name.startswith("sqs-s3"):
            yield "s3_event", name, raw
        if kind == "alert":
            yield "alert_event", name, raw
        for i, data in enumerate(data_fields(json.loads(raw))):
            yield "record_data", f"{name}-{i}", data
    # A redrive request, as `runnel quarantine redrive` sends it to a stream function.
    entry = {"_id": "shardId-000000000000:1:2", "kind": "rejected", "reason": "old rule", "stream": "shardId-000000000000",
             "position": "1", "document_index": 2, "partition_key": "p", "arrival": "2026-11-30T10:00:00Z", "source_arn": None,
             "data_base64": base64.b64encode(b'{"device_id":"sensor-0001","ts":"2026-11-30T10:00:00Z","temperature":20}').decode()}
    yield "kinesis_event", "redrive-request", json.dumps({"runnelRedrive": {"entries": [entry, {**entry, "sub_record": 1}]}}).encode()
    for selector, body in ((0, ROWS_CSV), (1, ROWS_NDJSON)):
        yield "object_rows", f"plain-{selector}", bytes([selector]) + body
        yield "object_rows", f"gzip-{selector}", bytes([selector | 2]) + gzip.compress(body)
    for i, t in enumerate(TIMES):
        yield "timestamp", f"time-{i}", t.encode()


def main():
    out = pathlib.Path(sys.argv[1])
    count = 0
    for target, name, data in seeds():
        folder = out / target
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        count += 1
    print(f"fuzz-seeds: {count} seeds in {out}")


if __name__ == "__main__":
    main()
