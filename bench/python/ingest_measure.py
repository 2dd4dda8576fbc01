"""s3-ingest's work in Python 3.11 with the standard library (csv and gzip): a gzip CSV of
transactions read as a stream, each row validated by the same rules, converted (amount to minor
units, timestamp to UTC), written as a JSON line with `_id`, `_source` and `_line` into gzip level 1
output per day, bad rows to a quarantine list. Times the whole object, median of several runs.

    python bench/python/ingest_measure.py INPUT.csv.gz [--runs N] [--json OUT]
"""
import argparse
import csv
import datetime
import gzip
import io
import json
import re
import statistics
import sys
import time

SOURCE = "s3://raw/transactions/dt=2026-11-22/bench.csv.gz"
ZERO_DIGITS = {"JPY", "KRW", "CLP", "ISK", "VND", "XOF", "XAF", "UGX", "PYG", "RWF"}
THREE_DIGITS = {"BHD", "KWD", "OMR", "JOD", "TND", "LYD", "IQD"}
AMOUNT = re.compile(r"([+-]?)(\d+)(?:\.(\d*))?$")
UPPER2 = re.compile(r"[A-Z]{2}$")
UPPER3 = re.compile(r"[A-Z]{3}$")


def minor_units(amount, digits):
    m = AMOUNT.match(amount.strip())
    if not m:
        raise ValueError(f"{amount!r} is not a decimal number")
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    if len(frac) > digits:
        raise ValueError(f"{amount!r} has more than {digits} decimal place(s)")
    value = int(whole) * 10 ** digits + (int(frac) * 10 ** (digits - len(frac)) if frac else 0)
    return -value if sign == "-" else value


def curate(row):
    """The curated transaction of a valid row, or a list of errors."""
    errors = []
    for field, limit in (("transaction_id", 64), ("account_id", 64), ("merchant", 200)):
        value = row[field].strip()
        if not value:
            errors.append((field, "must not be empty"))
        elif len(value) > limit:
            errors.append((field, f"must be at most {limit} characters"))
    currency = row["currency"]
    currency_ok = bool(UPPER3.match(currency))
    if not currency_ok:
        errors.append(("currency", f"{currency!r} is not an ISO 4217 code"))
    digits = 0 if currency in ZERO_DIGITS else 3 if currency in THREE_DIGITS else 2
    try:
        amount_minor = minor_units(row["amount"], digits if currency_ok else 2)
    except ValueError as e:
        errors.append(("amount", str(e)))
    try:
        event_time = datetime.datetime.fromisoformat(row["timestamp"].strip()).astimezone(datetime.timezone.utc)
    except ValueError as e:
        errors.append(("timestamp", str(e)))
    country = row.get("country") or ""
    if country and not UPPER2.match(country):
        errors.append(("country", f"{country!r} is not an ISO 3166 alpha-2 code"))
    if errors:
        return None, errors
    out = {"transaction_id": row["transaction_id"].strip(), "account_id": row["account_id"].strip(),
           "amount": row["amount"].strip().lstrip("+"), "amount_minor": amount_minor, "currency": currency,
           "event_time": event_time.strftime("%Y-%m-%dT%H:%M:%SZ"), "merchant": row["merchant"].strip()}
    if (row.get("category") or "").strip():
        out["category"] = row["category"]
    if country:
        out["country"] = country
    return out, None


def ingest(body):
    """Returns (rows out, quarantined, output gzip bytes per day)."""
    outputs, quarantine, rows_out = {}, [], 0
    with gzip.open(io.BytesIO(body), "rt", newline="") as text:
        for line, row in enumerate(csv.DictReader(text), start=2):
            curated, errors = curate(row)
            if errors:
                quarantine.append({"line": line, "errors": errors})
                continue
            day = curated["event_time"][:10]
            sink = outputs.get(day)
            if sink is None:
                sink = outputs[day] = gzip.GzipFile(fileobj=io.BytesIO(), mode="wb", compresslevel=1)
            document = {"_id": curated["transaction_id"], "_source": SOURCE, "_line": line, **curated}
            sink.write((json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n").encode())
            rows_out += 1
    sizes = {}
    for day, sink in outputs.items():
        buffer = sink.fileobj
        sink.close()
        sizes[day] = len(buffer.getvalue())
    return rows_out, len(quarantine), sizes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    with open(args.input, "rb") as f:
        body = f.read()
    csv_bytes = len(gzip.decompress(body))
    times, rows_out = [], 0
    for _ in range(args.runs):
        started = time.perf_counter()
        rows_out, bad, _ = ingest(body)
        times.append(time.perf_counter() - started)
        if bad:
            sys.exit(f"the Python ingest quarantined {bad} rows of a clean input")
    seconds = statistics.median(times)
    print(f"python {sys.version.split()[0]} csv + gzip: {seconds:.2f} s, {csv_bytes / 1e6 / seconds:.1f} MB/s of CSV, "
          f"{rows_out} rows (median of {args.runs})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "seconds": seconds, "csv_bytes": csv_bytes,
                       "rows": rows_out, "mb_s": csv_bytes / 1e6 / seconds, "runs": args.runs}, f, indent=2)


if __name__ == "__main__":
    main()
