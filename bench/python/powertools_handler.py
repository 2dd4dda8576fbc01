"""kinesis-processor's work as a Python 3.11 Lambda handler on aws-lambda-powertools' BatchProcessor:
the side-by-side baseline of the Kinesis throughput benchmark (`make bench`).

Same work as the Rust path: base64 (done by the data class), gzip by magic bytes, NDJSON split,
JSON parse, the same validation rules, °F → °C, curated line with `_id` first, runs of consecutive
documents per hourly partition, gzip level 1, and an in-memory store instead of S3.
"""
import gzip
import json
from datetime import datetime, timezone

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

processor = BatchProcessor(event_type=EventType.KinesisDataStreams)

STORE = {}  # key -> object bytes: the in-memory sink
_lines = []  # (destination, first-document key, line) in batch order, filled by record_handler

EPOCH_2000, EPOCH_2100 = 946_684_800, 4_102_444_800


class BadData(Exception):
    pass


def _event_time(ts):
    if isinstance(ts, bool):
        raise BadData("ts: not a time")
    if isinstance(ts, int):
        return datetime.fromtimestamp(ts / 1000, timezone.utc)
    if isinstance(ts, str):
        try:
            t = datetime.fromisoformat(ts.strip())
        except ValueError as e:
            raise BadData(f"ts: {ts!r} is not an RFC 3339 time: {e}") from None
        if t.tzinfo is None:
            raise BadData(f"ts: {ts!r} has no offset")
        return t.astimezone(timezone.utc)
    raise BadData("ts: expected an RFC 3339 time or epoch milliseconds")


def _validate(doc):
    if not isinstance(doc, dict):
        raise BadData("not a JSON object")
    errors = []
    device = doc.get("device_id")
    if not isinstance(device, str) or not device.strip():
        errors.append("device_id: must not be empty")
    elif len(device.strip()) > 128:
        errors.append("device_id: must be at most 128 characters")
    try:
        t = _event_time(doc.get("ts"))
        if not EPOCH_2000 <= t.timestamp() < EPOCH_2100:
            errors.append(f"ts: {t} is outside 2000-01-01..2100-01-01")
    except BadData as e:
        errors.append(str(e))
        t = None
    temperature = doc.get("temperature")
    unit = doc.get("unit", "C")
    if not isinstance(temperature, (int, float)) or unit not in ("C", "c", "celsius", "F", "f", "fahrenheit"):
        errors.append("temperature: expected a number with unit C or F")
        celsius = None
    else:
        celsius = (temperature - 32.0) * 5.0 / 9.0 if unit in ("F", "f", "fahrenheit") else float(temperature)
        if not -60.0 <= celsius <= 90.0:
            errors.append(f"temperature: {celsius:.2f} °C is outside -60..=90")
    for field in ("humidity", "battery"):
        v = doc.get(field)
        if v is not None and (not isinstance(v, (int, float)) or not 0 <= v <= 100):
            errors.append(f"{field}: {v} is outside 0..=100 %")
    if errors:
        raise BadData("failed validation: " + "; ".join(errors))
    return device.strip(), t, celsius


def _rfc3339(t):
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond // 1000:03d}" if t.microsecond % 1000 == 0 else f".{t.microsecond:06d}"
    return text + "Z"


def record_handler(record):
    data = record.kinesis.data_as_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    shard = record.event_id.split(":", 1)[0]
    seq = record.kinesis.sequence_number
    arrival = _rfc3339(datetime.fromtimestamp(record.kinesis.approximate_arrival_timestamp, timezone.utc))
    docs = [line for line in data.split(b"\n") if line.strip()]
    for index, raw in enumerate(docs):
        key = f"{shard}-{seq}-{index:05}"
        doc_id = f"{shard}:{seq}:{index}"
        try:
            doc = json.loads(raw)
            device, t, celsius = _validate(doc)
        except (BadData, ValueError) as e:
            _lines.append((f"quarantine/dt={arrival[:10]}", key, json.dumps({"_id": doc_id, "reason": str(e), "raw": raw.decode("utf-8", "replace")})))
            continue
        out = {"_id": doc_id, "device_id": device, "event_time": _rfc3339(t), "temperature_c": round(celsius, 2)}
        humidity, battery = doc.get("humidity"), doc.get("battery")
        if humidity is not None:
            out["humidity_pct"] = float(humidity)
        if battery is not None:
            out["battery_pct"] = float(battery)
        out["arrival_time"] = arrival
        _lines.append((f"iot/dt={t:%Y-%m-%d}/hour={t:%H}", key, json.dumps(out, separators=(",", ":"))))


def _write_runs():
    run_dest, run_key, run = None, None, []
    for dest, key, line in _lines + [(None, None, None)]:
        if dest != run_dest and run:
            body = ("\n".join(run) + "\n").encode()
            if run_dest.startswith("iot/"):
                STORE[f"{run_dest}/{run_key}.json.gz"] = gzip.compress(body, compresslevel=1)
            else:
                STORE[f"{run_dest}/{run_key}.json"] = body
            run = []
        if dest != run_dest:
            run_dest, run_key = dest, key
        if line is not None:
            run.append(line)
    written = sum(1 for d, _, _ in _lines if d.startswith("iot/"))
    _lines.clear()
    return written


def handler(event, context):
    response = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    handler.written = _write_runs()
    return response
