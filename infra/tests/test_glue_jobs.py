"""The Glue jobs' own Spark code (infra/glue/jobs.py) in a local Spark session, on real output of
the functions.

The functions run under `cargo lambda watch` against the emulator: s3-ingest reads CSV files put
in the emulator's S3, kinesis-processor gets Kinesis batches; what they write is copied to a
temporary directory, because this Spark has no S3 connector. Run by `make glue-check` (inside
scripts/with-emulator, with the Spark venv from tools/spark.txt):
    .tools/spark/bin/python -m unittest -v infra/tests/test_glue_jobs.py
"""
import base64
import datetime
import functools
import gzip
import json
import os
import shutil
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "glue"))
import jobs  # noqa: E402
from botocore.config import Config  # noqa: E402
from support import Background, client, free_port, gzip_csv, log, s3_event_for  # noqa: E402

ARGS = {"JOB_NAME": "runnel-dev-daily-etl", "runnel_job": "daily_accounts", "date": "2026-11-22",
        "input_path": "s3://curated/transactions/dt=2026-11-22",
        "output_path": "s3://analytics/daily_accounts", "curated_base": "s3://curated/transactions"}


class PlanTest(unittest.TestCase):
    """Argument handling, decided before Spark starts."""

    def test_plan_normalises_paths(self):
        p = jobs.plan_daily(ARGS)
        self.assertEqual(p["input_path"], "s3://curated/transactions/dt=2026-11-22/")
        self.assertEqual(p["partition_path"], "s3://analytics/daily_accounts/dt=2026-11-22/")

    def test_scheduled_run_takes_yesterday(self):
        p = jobs.plan_compaction(dict(ARGS, date="auto", input_path="auto", curated_base="s3://curated/iot"),
                                 today=datetime.date(2026, 3, 1))
        self.assertEqual(p["day"], "2026-02-28")
        self.assertEqual(p["input_path"], "s3://curated/iot/dt=2026-02-28/")
        self.assertEqual(p["rows_per_file"], jobs.DEFAULT_ROWS_PER_FILE)

    def test_bad_arguments_are_clear_errors(self):
        for key, value, message in [("date", "22/11/2026", "--date must be YYYY-MM-DD"),
                                    ("date", "2026-02-30", "day is out of range"),
                                    ("output_path", "/tmp/out", "--output_path must be an s3:// path"),
                                    ("input_path", "s3://curated/transactions/dt=2026-11-21/", "is not the partition of"),
                                    ("rows_per_file", "many", "--rows_per_file must be a positive whole number")]:
            with self.subTest(key=key, value=value):
                with self.assertRaisesRegex(ValueError, message):
                    jobs.plan_compaction(dict(ARGS, **{key: value}))


def setUpModule():
    global SPARK, WATCH, LAMBDA, S3, RAW, CURATED, WORKDIR
    from pyspark.sql import SparkSession
    WORKDIR = tempfile.mkdtemp(prefix="runnel-glue-")
    S3 = client("s3")
    suffix = uuid.uuid4().hex[:8]
    RAW, CURATED = f"glue-raw-{suffix}", f"glue-curated-{suffix}"
    for bucket in (RAW, CURATED):
        S3.create_bucket(Bucket=bucket)
    port = free_port()
    # Both functions write to CURATED under their default prefixes (their pipeline names).
    WATCH = Background("glue-watch", ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1",
                                      "--invoke-port", str(port), "--env-var", f"OUTPUT_BUCKET={CURATED}"],
                       "127.0.0.1", port)
    # The first invoke of each function builds it (cargo lambda watch), which can take minutes cold.
    LAMBDA = client("lambda", endpoint_url=f"http://127.0.0.1:{port}",
                    config=Config(read_timeout=900, retries={"max_attempts": 0}))
    SPARK = (SparkSession.builder.master("local[2]").appName("runnel-glue-tests")
             .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", "4").getOrCreate())
    SPARK.sparkContext.setLogLevel("ERROR")
    log(f"Spark {SPARK.version} local[2]; functions under cargo lambda watch on port {port}")


def tearDownModule():
    if "SPARK" in globals():
        SPARK.stop()
    if "WATCH" in globals():
        WATCH.stop()
    shutil.rmtree(WORKDIR, ignore_errors=True)


def invoke(function, payload):
    reply = LAMBDA.invoke(FunctionName=function, Payload=json.dumps(payload).encode())
    answer = json.loads(reply["Payload"].read())
    if "FunctionError" in reply:
        raise AssertionError(f"{function} failed: {answer}\n{WATCH.tail()}")
    return answer


def ingest(key, rows):
    """s3-ingest on a gzip CSV file put in the raw bucket; returns its answer for the object."""
    answer = invoke("s3-ingest", s3_event_for(S3, RAW, key, gzip_csv(rows)))
    return answer["objects"][0]


def kinesis_batch(readings, first_index, first_sequence):
    """A Kinesis event as the mapping delivers it: reading i of the stream has sequence
    first_sequence + i and arrived i seconds after the first, in every delivery."""
    records = []
    for i, reading in enumerate(readings, start=first_index):
        sequence = str(first_sequence + i)
        records.append({"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": reading["device_id"],
                                    "sequenceNumber": sequence,
                                    "data": base64.b64encode(json.dumps(reading).encode()).decode(),
                                    "approximateArrivalTimestamp": 1795323300.25 + i},
                        "eventSource": "aws:kinesis", "eventVersion": "1.0",
                        "eventID": f"shardId-000000000000:{sequence}", "eventName": "aws:kinesis:record",
                        "invokeIdentityArn": "arn:aws:iam::123456789012:role/runnel-kinesis-processor",
                        "awsRegion": "us-east-1",
                        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/runnel-dev-iot"})
    return {"Records": records}


def local_copy(prefix):
    """The curated objects under prefix, copied to a fresh local directory with their keys."""
    target = tempfile.mkdtemp(dir=WORKDIR)
    for page in S3.get_paginator("list_objects_v2").paginate(Bucket=CURATED, Prefix=prefix):
        for obj in page.get("Contents", []):
            path = os.path.join(target, obj["Key"])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            S3.download_file(CURATED, obj["Key"], path)
    return os.path.join(target, prefix)


def parquet_rows(path, day):
    return [r.asDict() for r in SPARK.read.parquet(path).where(f"dt = '{day}'").collect()]


def add_object(directory, name, lines):
    """A gzip NDJSON object put beside real output (what a manual upload or a schema drift leaves)."""
    os.makedirs(directory, exist_ok=True)
    with gzip.open(os.path.join(directory, name), "wt") as f:
        f.write("".join(line + "\n" for line in lines))


DAY = "2026-11-22"
TRANSACTION_ROWS = [
    "tx-1,acc-1,12.50,EUR,2026-11-22T08:00:00Z,Café,food,DE",
    "tx-2,acc-1,7.25,EUR,2026-11-22T09:30:00Z,Kiosk,,DE",
    "tx-3,acc-2,1000,JPY,2026-11-22T10:00:00Z,Konbini,food,JP",
    "tx-4,acc-2,oops,JPY,2026-11-22T10:05:00Z,Konbini,food,JP",
    "tx-5,acc-1,-2.00,EUR,2026-11-22T23:59:59Z,Café,food,DE",
]
READINGS = [{"device_id": f"sensor-{d:02d}", "ts": f"{DAY}T{h:02d}:{m:02d}:00Z", "temperature": 20 + d + m / 100,
             "unit": "C", "humidity": 40.0, "battery": 90.0 - h}
            for h in (6, 7, 8) for m in (0, 20, 40) for d in range(4)]


@functools.cache
def transactions_input():
    """s3-ingest's output for a day: a file, the same file delivered again (at-least-once) and a
    later file correcting tx-2, copied to a local directory."""
    first = ingest(f"transactions/dt={DAY}/export-1.csv.gz", TRANSACTION_ROWS)
    assert (first["rows_out"], first["rows_quarantined"]) == (4, 1), first
    again = ingest(f"transactions/dt={DAY}/export-1-copy.csv.gz", TRANSACTION_ROWS)
    assert again["rows_out"] == 4, again
    ingest(f"transactions/dt={DAY}/export-2.csv.gz", ["tx-2,acc-1,8.25,EUR,2026-11-22T09:30:00Z,Kiosk,,DE"])
    return local_copy(f"s3-ingest/dt={DAY}/")


@functools.cache
def readings_input():
    """kinesis-processor's output for a day, delivered in batches of 10 and then re-delivered
    regrouped in batches of 7 (as after a retry), copied to a local directory."""
    sequence = 49612345678901234567890123456789012345678901234567800000
    for batch_size in (10, 7):
        for start in range(0, len(READINGS), batch_size):
            batch = kinesis_batch(READINGS[start:start + batch_size], start, sequence)
            answer = invoke("kinesis-processor", batch)
            assert answer == {"batchItemFailures": []}, answer
    return local_copy(f"kinesis-processor/dt={DAY}/")


class DailyAccounts(unittest.TestCase):
    DAY = DAY

    @classmethod
    def setUpClass(cls):
        cls.input = transactions_input()
        cls.plan = jobs.plan_daily(dict(ARGS, date=cls.DAY))

    def expected(self):
        # tx-2 corrected to 8.25; tx-4 quarantined by s3-ingest; copies collapse.
        return {("acc-1", "EUR"): (3, 1250 + 825 - 200, "2026-11-22 08:00:00", "2026-11-22 23:59:59", 2),
                ("acc-2", "JPY"): (1, 1000, "2026-11-22 10:00:00", "2026-11-22 10:00:00", 1)}

    def actual(self, output):
        return {(r["account_id"], r["currency"]): (r["transaction_count"], r["total_amount_minor"],
                                                   str(r["first_event_time"]), str(r["last_event_time"]),
                                                   r["merchant_count"])
                for r in parquet_rows(output, self.DAY)}

    def test_a_rerun_replaces_the_day_and_the_correction_wins(self):
        output = tempfile.mkdtemp(dir=WORKDIR)
        other_day = jobs.plan_daily(dict(ARGS, date="2026-11-21", input_path="auto"))
        first = jobs.run_daily(SPARK, self.plan, self.input, output)
        log(f"daily_accounts on s3-ingest output: {json.dumps(first)}")
        self.assertEqual((first["rows"], first["malformed"], first["unique"], first["aggregates"]), (9, 0, 4, 2))
        # Another day written before must survive the re-run of this one.
        jobs.write_day(SPARK.createDataFrame([("acc-9", "EUR", 1, 1, None, None, 1, "2026-11-21")],
                                             "account_id string, currency string, transaction_count long, "
                                             "total_amount_minor long, first_event_time timestamp, "
                                             "last_event_time timestamp, merchant_count long, dt string"),
                       output, other_day["day"])
        second = jobs.run_daily(SPARK, self.plan, self.input, output)
        self.assertEqual(second, first)
        self.assertEqual(len(parquet_rows(output, self.DAY)), 2, "a re-run must not add rows")
        self.assertEqual(self.actual(output), self.expected())
        self.assertEqual(len(parquet_rows(output, other_day["day"])), 1)

    def test_an_empty_day_succeeds_and_writes_nothing(self):
        output = tempfile.mkdtemp(dir=WORKDIR)
        p = jobs.plan_daily(dict(ARGS, date="2026-11-20", input_path="auto"))
        report = jobs.run_daily(SPARK, p, os.path.join(WORKDIR, "no-such-day"), output)
        self.assertEqual((report["rows"], report["aggregates"], report["output"]), (0, 0, None))
        self.assertEqual(os.listdir(output), [])

    def test_malformed_lines_are_counted_and_left_out(self):
        day_dir = tempfile.mkdtemp(dir=WORKDIR)
        shutil.copytree(self.input, day_dir, dirs_exist_ok=True)
        add_object(day_dir, "manual-upload.json.gz", [
            '{"_id": "tx-90", "_source": "s3://x", "_line": 2, "account_id": "acc-1", "amount_minor": 5,',
            '{"_id": "tx-91", "_source": "s3://x", "_line": 3, "account_id": "acc-1", "amount_minor": 5, '
            '"currency": "EUR", "event_time": "yesterday", "merchant": "M"}',
            '{"_id": "tx-92", "_source": "s3://x", "_line": 4, "account_id": "acc-1", "amount_minor": "five", '
            '"currency": "EUR", "event_time": "2026-11-22T12:00:00Z", "merchant": "M"}',
            '{"_id": "tx-93", "_source": "s3://x", "_line": 5, "account_id": "acc-1", '
            '"currency": "EUR", "event_time": "2026-11-22T12:00:00Z", "merchant": "M"}',
        ])
        output = tempfile.mkdtemp(dir=WORKDIR)
        report = jobs.run_daily(SPARK, self.plan, day_dir, output)
        self.assertEqual((report["malformed"], report["unique"]), (4, 4))
        self.assertEqual(self.actual(output), self.expected())


class CompactReadings(unittest.TestCase):
    DAY = DAY

    @classmethod
    def setUpClass(cls):
        cls.readings = READINGS
        cls.input = readings_input()
        cls.plan = jobs.plan_compaction(dict(ARGS, runnel_job="compact_readings", date=cls.DAY, rows_per_file="10",
                                             input_path=f"s3://curated/iot/dt={cls.DAY}/",
                                             output_path="s3://analytics/compacted_readings/"))

    def test_compaction_dedupes_sorts_and_reports_file_counts(self):
        output = tempfile.mkdtemp(dir=WORKDIR)
        report = jobs.run_compaction(SPARK, self.plan, self.input, output)
        log(f"compact_readings on kinesis-processor output: {json.dumps(report)}")
        n = len(self.readings)
        # Where both deliveries start a run at the same record the second overwrote the first's
        # object (same key); elsewhere the copies sit in different objects.
        lines = sum(len(gzip.open(os.path.join(d, f)).read().splitlines())
                    for d, _, files in os.walk(self.input) for f in files)
        self.assertGreater(lines, n)
        self.assertEqual((report["rows"], report["unique"], report["malformed"]), (lines, n, 0))
        self.assertGreater(report["files_before"], report["files_after"])
        self.assertEqual(report["files_after"], -(-n // 10))  # ceil(36 / 10) files of ≤ 10 rows
        rows = parquet_rows(output, self.DAY)
        self.assertEqual(sorted(r["_id"] for r in rows), sorted({r["_id"] for r in rows}))
        self.assertEqual(len(rows), n)
        self.assertEqual({r["hour"] for r in rows}, {"06", "07", "08"})
        # Each file holds its own device range, sorted by device then time.
        day_dir = os.path.join(output, f"dt={self.DAY}")
        ranges = []
        for name in sorted(f for f in os.listdir(day_dir) if f.endswith(".parquet")):
            keys = [(r["device_id"], r["event_time"]) for r in SPARK.read.parquet(os.path.join(day_dir, name)).collect()]
            self.assertEqual(keys, sorted(keys), name)
            ranges.append((keys[0][0], keys[-1][0]))
        for (_, last), (first, _) in zip(sorted(ranges), sorted(ranges)[1:]):
            self.assertLessEqual(last, first, f"device ranges overlap: {ranges}")
        again = jobs.run_compaction(SPARK, self.plan, self.input, output)
        self.assertEqual(again, report)
        self.assertEqual(len(parquet_rows(output, self.DAY)), n)


def declared_tables():
    """The AWS::Glue::Table resources of infra/template.yaml by table name (CloudFormation's
    short-form tags read as plain values)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "template.yaml")
    with open(path) as f:
        template = yaml.load(f, Loader=Loader)
    return {r["Properties"]["TableInput"]["Name"]: r["Properties"]["TableInput"]
            for r in template["Resources"].values() if r["Type"] == "AWS::Glue::Table"}


SPARK_TYPES = {"string": "StringType()", "bigint": "LongType()", "double": "DoubleType()",
               "timestamp": "TimestampType()"}


def joda_regex(pattern):
    """A regular expression for the subset of Joda-Time patterns the tables use."""
    import re
    out, i = "", 0
    while i < len(pattern):
        if pattern[i] == "'":
            end = pattern.index("'", i + 1)
            out += re.escape(pattern[i + 1:end])
            i = end + 1
            continue
        run = len(pattern[i:]) - len(pattern[i:].lstrip(pattern[i]))
        out += rf"\d{{{run}}}" if pattern[i] in "yMdHmsS" else re.escape(pattern[i] * run)
        i += run
    return re.compile(out + "$")


class TableSchemas(unittest.TestCase):
    """Each declared table read against real output: every column the data has is declared with
    a type it parses as, every declared column occurs, timestamps match the declared formats, and
    the partition directories are the declared partition keys."""

    @classmethod
    def setUpClass(cls):
        cls.tables = declared_tables()

    def schema(self, table):
        from pyspark.sql import types as T
        return T.StructType([T.StructField(c["Name"], eval("T." + SPARK_TYPES[c["Type"]]))  # noqa: S307
                             for c in self.tables[table]["StorageDescriptor"]["Columns"]])

    def partition_dirs(self, root):
        names = set()
        for _, dirs, _ in os.walk(root):
            names |= {d.split("=")[0] for d in dirs if "=" in d}
        return names

    def check_json_table(self, table, root):
        declared = self.tables[table]
        columns = [c["Name"] for c in declared["StorageDescriptor"]["Columns"]]
        lines = [json.loads(line) for d, _, files in os.walk(root) for f in files
                 for line in gzip.open(os.path.join(d, f)).read().splitlines()]
        self.assertTrue(lines)
        present = set().union(*(line.keys() for line in lines))
        self.assertEqual(present - set(columns), set(), f"{table}: undeclared columns in the data")
        self.assertEqual(set(columns) - present, set(), f"{table}: declared columns the data never has")
        # Every value parses as its declared type (FAILFAST: one bad line fails the read).
        frame = (SPARK.read.schema(self.schema(table)).option("mode", "FAILFAST")
                 .option("timestampFormat", jobs.TIMESTAMP_FORMAT).json(root))
        self.assertEqual(len(frame.collect()), len(lines))  # collect: every column converted
        formats = [joda_regex(f) for f in declared["StorageDescriptor"]["SerdeInfo"]["Parameters"]["timestamp.formats"].split(",")]
        json_types = {"string": str, "bigint": int, "double": (int, float), "timestamp": str}
        for c in declared["StorageDescriptor"]["Columns"]:
            for value in (line[c["Name"]] for line in lines if line.get(c["Name"]) is not None):
                where = f"{table}.{c['Name']} = {value!r}"
                self.assertIsInstance(value, json_types[c["Type"]], where)
                self.assertNotIsInstance(value, bool, where)
                if c["Type"] == "timestamp":
                    self.assertTrue(any(f.match(value) for f in formats), f"{where}: not a declared timestamp format")
        # root is the day's directory (dt=...); any further partition levels are below it.
        found = {os.path.basename(root.rstrip("/")).split("=")[0]} | self.partition_dirs(root)
        self.assertEqual(found, {k["Name"] for k in declared["PartitionKeys"]})
        return frame

    def check_parquet_table(self, table, output):
        declared = self.tables[table]
        written = SPARK.read.parquet(output)
        partition_keys = [k["Name"] for k in declared["PartitionKeys"]]
        fields = {f.name: f.dataType for f in written.schema.fields if f.name not in partition_keys}
        expected = {f.name: f.dataType for f in self.schema(table).fields}
        self.assertEqual(fields, expected, f"{table}: Parquet columns differ from the declaration")
        self.assertEqual(self.partition_dirs(output), set(partition_keys))

    def test_curated_readings(self):
        self.check_json_table("curated_readings", readings_input())

    def test_curated_transactions(self):
        self.check_json_table("curated_transactions", transactions_input())

    def test_compacted_readings(self):
        output = tempfile.mkdtemp(dir=WORKDIR)
        p = jobs.plan_compaction(dict(ARGS, runnel_job="compact_readings", date=DAY, input_path=f"s3://c/iot/dt={DAY}/"))
        jobs.run_compaction(SPARK, p, readings_input(), output)
        self.check_parquet_table("compacted_readings", output)

    def test_daily_accounts(self):
        output = tempfile.mkdtemp(dir=WORKDIR)
        jobs.run_daily(SPARK, jobs.plan_daily(dict(ARGS, date=DAY)), transactions_input(), output)
        self.check_parquet_table("daily_accounts", output)


if __name__ == "__main__":
    unittest.main()
