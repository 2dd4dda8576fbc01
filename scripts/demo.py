"""The whole pipeline on the emulator: produce readings, land a day of transactions, report a Glue
failure, wait until everything settles, run the day's Glue jobs on local Spark, query the tables
with Athena, print a summary, and fail loudly on any wrong count.

Run by `make demo` (or `scripts/demo`) inside scripts/with-emulator after scripts/deploy-emulator.
    python scripts/demo.py --stack runnel-demo --readings 50000 --poison 5
"""
import argparse
import collections
import datetime
import decimal
import gzip
import json
import os
import random
import subprocess
import sys
import time

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "infra", "tests"))
from support import function_processes, stack_outputs as outputs  # noqa: E402
HEADER = "transaction_id,account_id,amount,currency,timestamp,merchant,category,country"


def client(name):
    return boto3.client(name, region_name="us-east-1")


def transactions_file(day, part, rows, bad, rng):
    """CSV text with `rows` valid rows and `bad` invalid ones spread through it."""
    lines = [HEADER]
    bad_at = set(rng.sample(range(rows + bad), bad))
    n = 0
    for i in range(rows + bad):
        if i in bad_at:
            lines.append(f"bad-{part}-{i},acc-1,12.345,EUR,{day}T10:00:00Z,Shop,,DE")
            continue
        secs = rng.randrange(86400)
        t = f"{day}T{secs // 3600:02}:{secs // 60 % 60:02}:{secs % 60:02}Z"
        lines.append(f"tx-{part}-{n:06},acc-{rng.randrange(300):04},{rng.randrange(1, 50000) / 100:.2f},EUR,{t},Shop {rng.randrange(40)},groceries,DE")
        n += 1
    return "\n".join(lines) + "\n"


def list_keys(s3, bucket, prefix):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [(o["Key"], o["LastModified"]) for o in page.get("Contents", [])]
    return keys


def read_lines(s3, bucket, key):
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def athena_query(athena, database, output, sql):
    """Runs a query to completion; returns the header and the rows (as strings)."""
    qid = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": database},
                                       ResultConfiguration={"OutputLocation": output})["QueryExecutionId"]
    while True:
        status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        if status["State"] == "SUCCEEDED":
            break
        if status["State"] in ("FAILED", "CANCELLED"):
            sys.exit(f"demo: Athena query {status['State']}: {status.get('StateChangeReason')}\n  {sql}")
        time.sleep(0.2)
    rows = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=qid):
        rows += [[c.get("VarCharValue") for c in r["Data"]] for r in page["ResultSet"]["Rows"]]
    return rows[0], rows[1:]


def minute(text):
    """A window start or event time as Athena or DuckDB prints it, cut to its minute."""
    return text.replace("T", " ")[:16]


def compare_aggregates(header, merged, raw):
    """The merged panes (infra/athena/device_minute.sql) against the raw readings grouped the
    same way: counts, minima and maxima exactly, sums and means within 1e-9 relative, the distinct
    temperatures within three standard errors of the sketch (1.6 %) or one. Returns the problems."""
    problems = []
    rows = {(r[0], minute(r[1])): dict(zip(header, r)) for r in merged}
    expected = {(r[0], minute(r[1])): r for r in raw}
    if rows.keys() != expected.keys():
        missing, extra = expected.keys() - rows.keys(), rows.keys() - expected.keys()
        problems.append(f"aggregates: {len(rows)} device-minutes merged, {len(expected)} in the raw readings "
                        f"(missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]})")
    num = lambda v: None if v in (None, "", "None", "null") else float(v)
    close = lambda a, b: a is not None and b is not None and abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-300)
    for key in sorted(rows.keys() & expected.keys()):
        row, (_, _, n, t_min, t_max, t_sum, h_max, distinct) = rows[key], expected[key]
        checks = [
            ("readings", int(row["readings"]) == int(n)),
            ("temperature_c_count", int(row["temperature_c_count"]) == int(n)),
            ("temperature_c_min", num(row["temperature_c_min"]) == num(t_min)),
            ("temperature_c_max", num(row["temperature_c_max"]) == num(t_max)),
            ("humidity_max", num(row["humidity_max"]) == num(h_max)),
            ("temperature_c_sum", close(num(row["temperature_c_sum"]), num(t_sum))),
            ("temperature_c_mean", close(num(row["temperature_c_mean"]), num(t_sum) / int(n))),
            ("temperature_values", abs(int(row["temperature_values"]) - int(distinct)) <= max(1, 0.049 * int(distinct))),
        ]
        wrong = [name for name, ok in checks if not ok]
        if wrong:
            problems.append(f"aggregates: {key} differs in {wrong}: merged {row}, raw {expected[key]}")
            if len(problems) > 5:
                break
    return problems


def run_glue_job(job, day, curated_base, output_path):
    """One of the Glue jobs for the day on this machine's Spark (scripts/run-glue-job)."""
    python = os.path.join(ROOT, ".tools", "spark", "bin", "python")
    if not os.path.exists(python):
        sys.exit("demo: .tools/spark is missing; run `make glue-check` (or `make demo`) to install Spark")
    done = subprocess.run([python, os.path.join(ROOT, "scripts", "run-glue-job"), "--job", job, "--date", day,
                           "--curated-base", curated_base, "--output-path", output_path],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"demo: the {job} job failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def expected_accounts(texts):
    """Per account: valid transactions and their total in cents, from the uploaded CSV texts."""
    totals = collections.defaultdict(lambda: [0, 0])
    for text in texts:
        for line in text.splitlines()[1:]:
            fields = line.split(",")
            if fields[0].startswith("tx-"):
                totals[fields[1]][0] += 1
                totals[fields[1]][1] += int(decimal.Decimal(fields[2]) * 100)
    return {account: tuple(v) for account, v in totals.items()}


def rule_event(message):
    """The EventBridge event of a rule alert, from an SQS message of the alert topic (None for others)."""
    try:
        event = json.loads(json.loads(message["Body"])["Message"])
    except (KeyError, ValueError, TypeError):
        return None
    return event if isinstance(event, dict) and event.get("detail-type") == "Runnel Rule Matched" else None


def progress(msg):
    print(f"  {msg}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stack", default="runnel-demo")
    ap.add_argument("--readings", type=int, default=50000)
    ap.add_argument("--poison", type=int, default=5)
    ap.add_argument("--files", type=int, default=3)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--bad-rows", type=int, default=4)
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--runnel", default=os.path.join(ROOT, "target", "debug", "runnel"))
    ap.add_argument("--kill-processor", type=int, default=0,
                    help="kill the running kinesis-processor process this many times while producing (restart test)")
    ap.add_argument("--rate", type=int, default=0, help="readings per second (0: as fast as possible)")
    ap.add_argument("--json", help="also write the landing figures (objects, latency) to this file")
    ap.add_argument("--queue-readings", type=int, default=200,
                    help="readings also sent through the SQS readings queue, when the stack has one (+1 poison message)")
    args = ap.parse_args()
    started = time.time()
    out = outputs(args.stack)
    s3, sqs, sns, lam, glue = client("s3"), client("sqs"), client("sns"), client("lambda"), client("glue")
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    rng = random.Random(7)

    # Alerts are read from a queue subscribed to the topic, as an operator's tooling would.
    inbox = sqs.create_queue(QueueName=f"{args.stack}-demo-inbox-{int(started)}")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=out["AlertTopicArn"], Protocol="sqs", Endpoint=inbox_arn)

    print(f"1/6 producing {args.readings} readings and {args.poison} poison records to {out['StreamName']}")
    producer = subprocess.Popen([args.runnel, "produce", "--stream", out["StreamName"], "--count", str(args.readings),
                                 "--poison", str(args.poison), "--day", day, "--rate", str(args.rate)])
    kills = 0
    while kills < args.kill_processor and producer.poll() is None:
        time.sleep(0.7)
        victims = function_processes(out["KinesisProcessorFunctionName"])
        for pid in victims:
            os.kill(pid, 9)
        if victims:
            kills += 1
            progress(f"killed kinesis-processor process(es) {victims} mid-run ({kills}/{args.kill_processor})")
    if producer.wait() != 0:
        sys.exit("demo: runnel produce failed")
    if kills < args.kill_processor:
        sys.exit(f"demo: only {kills} of {args.kill_processor} kills happened before production ended; lower --rate")

    # One device overheats: above 80 °C three readings in a row (the rules too_hot and overheating).
    hot = [{"device_id": "sensor-hot", "ts": f"{day}T12:00:0{i}Z", "temperature": 86.5 + i, "unit": "C", "battery": 50.0}
           for i in range(3)]
    progress(f"sending {len(hot)} readings of sensor-hot above 80 °C")
    client("kinesis").put_records(StreamName=out["StreamName"], Records=[
        {"Data": json.dumps(r).encode(), "PartitionKey": "sensor-hot"} for r in hot])

    queue_url = out.get("ReadingsQueueUrl")
    queued = args.queue_readings if queue_url else 0
    queue_name = queue_url.rsplit("/", 1)[1] if queue_url else ""
    if queued:
        progress(f"sending {queued} readings and 1 poison message through {queue_name}")
        bodies = [json.dumps({"device_id": f"queue-sensor-{i % 7:02d}", "ts": f"{day}T12:{i % 60:02d}:{i // 60 % 60:02d}Z",
                              "temperature": 20 + i % 5, "unit": "C"}) for i in range(queued)]
        bodies.append('{"device_id": "queue-sensor-00", "ts":')
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies[start:start + 10])]
            failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
            if failed:
                sys.exit(f"demo: SQS refused {failed}")

    print(f"2/6 uploading {args.files} transaction files of {args.rows} rows (+{args.bad_rows} bad each) and _SUCCESS")
    folder = f"transactions/dt={day}"
    texts = []
    for part in range(args.files):
        text = transactions_file(day, part, args.rows, args.bad_rows, rng)
        texts.append(text)
        key = f"{folder}/part-{part:04}.csv"
        body = text.encode()
        if part == 0:
            key += ".gz"
            body = gzip.compress(body)
        s3.put_object(Bucket=out["RawBucketName"], Key=key, Body=body)
    s3.put_object(Bucket=out["RawBucketName"], Key=f"{folder}/_SUCCESS", Body=b"")

    print("3/6 reporting a Glue job failure to the deployed failure-alert")
    with open(os.path.join(ROOT, "events", "alert-glue-failed.json")) as f:
        event = json.load(f)
    event["detail"]["jobName"] = out["GlueJobName"]
    event["detail"]["jobRunId"] = f"jr_demo{int(started)}"
    resp = lam.invoke(FunctionName=out["FailureAlertFunctionName"], Payload=json.dumps(event).encode())
    answer = json.loads(resp["Payload"].read())
    if "FunctionError" in resp:
        sys.exit(f"failure-alert failed: {answer}")

    print(f"4/6 waiting for the pipeline to settle (at most {args.timeout} s)")
    expected_docs = args.readings + queued + len(hot)
    expected_bad = args.poison + (1 if queued else 0)
    deadline = time.time() + args.timeout
    alerts, docs, quarantined, manifests, runs = [], 0, 0, [], []
    while True:
        iot = list_keys(s3, out["CuratedBucketName"], "iot/")
        docs = sum(len(read_lines(s3, out["CuratedBucketName"], k)) for k, _ in iot) if iot else 0
        qkeys = list_keys(s3, out["QuarantineBucketName"], "quarantine/iot/")
        quarantined = sum(len(read_lines(s3, out["QuarantineBucketName"], k)) for k, _ in qkeys)
        manifests = [json.loads(s3.get_object(Bucket=out["CuratedBucketName"], Key=k)["Body"].read())
                     for k, _ in list_keys(s3, out["CuratedBucketName"], "manifests/transactions/") if k.endswith(".manifest.json")]
        runs = glue.get_job_runs(JobName=out["GlueJobName"])["JobRuns"]
        alerts += sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        rule_alerts = [e["detail"] for e in map(rule_event, alerts) if e]
        progress(f"{time.time() - started:5.0f}s readings landed {docs}/{expected_docs}, quarantined {quarantined}/{expected_bad}, "
                 f"files {len(manifests)}/{args.files}, Glue runs {len(runs)}, alerts {len(alerts) - len(rule_alerts)}, "
                 f"rule alerts {len(rule_alerts)}/2")
        settled = (docs >= expected_docs and quarantined >= expected_bad and len(manifests) >= args.files and runs
                   and len(alerts) > len(rule_alerts) and len(rule_alerts) >= 2)
        if settled:
            break
        if time.time() > deadline:
            sys.exit(f"demo: the pipeline did not settle within {args.timeout} s (see the counts above and .emulator/*.log)")
        time.sleep(2)

    # Latency: from a reading's arrival in the stream to the curated object holding it.
    # One read of every curated object: latency, ids, and what landed per device and hour.
    latencies, ids, landed = [], [], set()
    objects = 0
    partitions = set()
    for key, modified in iot:
        objects += 1
        partitions.add(key.split("/")[1] + "/" + key.split("/")[2])
        hour = int(key.split("/")[2].split("=")[1])
        for line in read_lines(s3, out["CuratedBucketName"], key):
            arrival = datetime.datetime.fromisoformat(line["arrival_time"].replace("Z", "+00:00"))
            latencies.append(max(0.0, (modified - arrival).total_seconds()))
            ids.append(line["_id"])
            landed.add((line["device_id"], hour, line["_id"]))
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print("5/6 running the day's Glue jobs on local Spark (the emulator's Glue accepts runs but runs no script)")
    curated, analytics = out["CuratedBucketName"], out["AnalyticsBucketName"]
    daily = run_glue_job("daily_accounts", day, f"s3://{curated}/transactions/", f"s3://{analytics}/daily_accounts/")
    progress(f"daily_accounts: {json.dumps(daily)}")
    compaction = run_glue_job("compact_readings", day, f"s3://{curated}/iot/", f"s3://{analytics}/compacted_readings/")
    progress(f"compact_readings: {json.dumps(compaction)}")

    print("6/6 querying the tables with Athena")
    athena, database = client("athena"), out["GlueDatabaseName"]
    results = f"s3://{analytics}/athena-results/"
    _, per_device_hour = athena_query(athena, database, results,
                                      f"SELECT device_id, hour, count(DISTINCT _id) FROM curated_readings "
                                      f"WHERE dt = '{day}' GROUP BY device_id, hour")
    hours_header, per_hour = athena_query(athena, database, results,
                                          f"SELECT hour, count(DISTINCT _id) AS readings, count(DISTINCT device_id) AS devices, "
                                          f"round(avg(temperature_c), 2) AS avg_temp_c FROM curated_readings "
                                          f"WHERE dt = '{day}' GROUP BY hour ORDER BY hour")
    _, accounts = athena_query(athena, database, results,
                               f"SELECT account_id, transaction_count, total_amount_minor FROM daily_accounts WHERE dt = '{day}'")
    _, compacted = athena_query(athena, database, results,
                                f"SELECT count(*), count(DISTINCT _id) FROM compacted_readings WHERE dt = '{day}'")

    with open(os.path.join(ROOT, "infra", "athena", "device_minute.sql")) as f:
        aggregates_header, merged = athena_query(athena, database, results, f.read().strip())
    _, raw_minutes = athena_query(athena, database, results,
                                  "SELECT device_id, substr(CAST(event_time AS VARCHAR), 1, 16), count(*), "
                                  "min(temperature_c), max(temperature_c), sum(temperature_c), max(humidity_pct), "
                                  "count(DISTINCT temperature_c) FROM curated_readings GROUP BY 1, 2")
    pane_objects = len(list_keys(s3, curated, "aggregates/device_minute/"))

    rows_out = sum(m["rows_out"] for m in manifests)
    rows_bad = sum(m["rows_quarantined"] for m in manifests)
    subjects = [json.loads(a["Body"]).get("Subject", "") for a in alerts if not rule_event(a)]

    print()
    print("Runnel demo summary")
    print(f"  IoT readings     produced {args.readings + args.poison:>7}   landed {docs:>7}   quarantined {quarantined:>3}")
    from_queue = sum(1 for i in set(ids) if queued and i.startswith(queue_name + ":"))
    if queued:
        print(f"  SQS readings     sent {queued + 1:>7}   landed {from_queue:>7}   quarantined   1   (one object per message)")
    print(f"  curated objects  {objects:>7} in {len(partitions)} hourly partition(s)")
    print(f"  transactions     files {len(manifests):>3}   rows landed {rows_out:>7}   rows quarantined {rows_bad:>3}")
    print(f"  Glue runs        started {len(runs):>3}   ({', '.join(r['JobRunState'] for r in runs)})")
    print(f"  alerts           delivered {len(subjects):>3}   {subjects[0] if subjects else ''}")
    for a in sorted(rule_alerts, key=lambda a: a["rule"]):
        print(f"  rule alert       {a['rule']:<12} {a['key']['device_id']}  {a['field']} {a['value']} {a['condition']} {a['limit']}"
              f" ({a['consecutive']} in a row) at {a['at']}, window from {a['window_start']}")
    print(f"  Glue jobs (Spark) daily_accounts {daily['aggregates']} accounts from {daily['unique']} transactions; "
          f"compact_readings {compaction['files_before']} curated objects -> {compaction['files_after']} Parquet file(s)")
    print(f"  Athena           {len(per_device_hour)} device-hours in curated_readings, {len(accounts)} accounts in "
          f"daily_accounts, {compacted[0][0]} rows in compacted_readings")
    widths = [max(len(str(v)) for v in column) for column in zip(hours_header, *per_hour)]
    for row in [hours_header] + per_hour[:6]:
        print("                   " + "  ".join(str(v).rjust(w) for v, w in zip(row, widths)))
    if len(per_hour) > 6:
        print(f"                   ... {len(per_hour) - 6} more hour(s)")
    print(f"  aggregates       {len(merged)} device-minutes merged from {pane_objects} pane objects "
          f"(infra/athena/device_minute.sql over device_minute_panes)")
    shown = ["device_id", "window_start", "readings", "temperature_c_min", "temperature_c_max",
             "temperature_c_mean", "battery_pct", "temperature_values"]
    at = [aggregates_header.index(c) for c in shown]
    table = [shown] + [[str(r[i]) if i != at[5] or r[i] is None else f"{float(r[i]):.2f}" for i in at] for r in merged[:5]]
    widths = [max(len(v) for v in column) for column in zip(*table)]
    for row in table:
        print("                   " + "  ".join(v.rjust(w) for v, w in zip(row, widths)))
    print(f"  latency          p50 {p50:.1f} s   p99 {p99:.1f} s  (stream arrival → curated object, 1 s clock resolution)")
    print(f"  wall time        {time.time() - started:.0f} s")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"readings": args.readings, "objects": objects, "partitions": len(partitions),
                       "objects_per_million": objects * 1e6 / max(1, docs), "pane_objects": pane_objects,
                       "pane_objects_per_million": pane_objects * 1e6 / max(1, docs), "latency_p50_s": p50,
                       "latency_p99_s": p99, "wall_s": time.time() - started}, f, indent=2)

    problems = []
    total = args.readings + queued + len(hot)
    if len(set(ids)) != total:
        problems.append(f"{len(set(ids))} distinct readings landed, expected {total}: something was lost")
    if docs != total:
        problems.append(f"landed {docs} readings ({docs - len(set(ids))} duplicated by _id), expected exactly {total}")
    if from_queue != queued:
        problems.append(f"{from_queue} readings landed from {queue_name}, expected {queued}")
    if quarantined != expected_bad:
        problems.append(f"quarantined {quarantined} poison records, expected {expected_bad}")
    if rows_out != args.files * args.rows or rows_bad != args.files * args.bad_rows:
        problems.append(f"transactions landed/quarantined {rows_out}/{rows_bad}, expected {args.files * args.rows}/{args.files * args.bad_rows}")
    # Athena against what was produced and landed (read directly from S3 above).
    by_device_hour = collections.Counter((device, hour) for device, hour, _ in landed)
    athena_counts = {(device, int(hour)): int(n) for device, hour, n in per_device_hour}
    if athena_counts != dict(by_device_hour) or sum(athena_counts.values()) != total:
        problems.append(f"Athena counts {sum(athena_counts.values())} readings in {len(athena_counts)} device-hours; "
                        f"landed {total} in {len(by_device_hour)}")
    athena_accounts = {a: (int(c), int(t)) for a, c, t in accounts}
    if athena_accounts != expected_accounts(texts):
        problems.append(f"Athena daily_accounts differ from the valid CSV rows ({len(athena_accounts)} accounts, "
                        f"{sum(c for c, _ in athena_accounts.values())} transactions)")
    if [int(v) for v in compacted[0]] != [total, total]:
        problems.append(f"compacted_readings holds {compacted[0]} (rows, distinct ids), expected {total} each")
    if compaction["files_after"] >= compaction["files_before"]:
        problems.append(f"compaction left {compaction['files_after']} files from {compaction['files_before']}")
    problems += compare_aggregates(aggregates_header, merged, raw_minutes)
    if len(runs) != 1:
        problems.append(f"{len(runs)} Glue runs, expected exactly 1 for the day")
    if len(subjects) != 1 or "Glue job" not in subjects[0]:
        problems.append(f"alerts {subjects}, expected one Glue job alert")
    fired = sorted((a["rule"], a["key"]["device_id"]) for a in rule_alerts)
    if fired != [("overheating", "sensor-hot"), ("too_hot", "sensor-hot")]:
        problems.append(f"rule alerts {fired}, expected overheating and too_hot for sensor-hot, once each")
    if problems:
        for p in problems:
            print(f"DEMO FAILED: {p}", file=sys.stderr)
        sys.exit(1)
    print("demo: every count is as expected")


if __name__ == "__main__":
    main()
