"""Runnel's Glue jobs (AWS Glue 5.0: Spark 3.5, Python 3.11), in one script because a Glue job's
script is a single uploaded file; each job in the template passes ``--runnel_job``:

``daily_accounts`` reads one day of curated transactions (gzip NDJSON written by s3-ingest under
``<curated_base>dt=YYYY-MM-DD/``), keeps one row per ``_id`` (at-least-once delivery upstream; the
copy from the latest source line wins, so a corrected re-delivery replaces the first), aggregates
per account and currency, and writes Parquet to ``<output_path>dt=YYYY-MM-DD/``.

``compact_readings`` turns a finished day of curated readings (kinesis-processor lands small gzip
NDJSON objects, one per batch run and hour partition, under ``<curated_base>dt=YYYY-MM-DD/hour=HH/``)
into Parquet under ``<output_path>dt=YYYY-MM-DD/``: one row per ``_id`` (a re-delivered batch
split differently leaves copies in two objects), sorted by device and event time so each row group
covers few devices and a narrow time range, in files of up to --rows_per_file rows (default
5,000,000). Its report gives the file counts before and after.

Arguments of both: --runnel_job, --date (``auto``: yesterday in UTC, for scheduled runs), --input_path
(``auto``: the day under --curated_base), --output_path, --curated_base.

- Re-running a day replaces that day's partition: Spark's own writer overwrites the partition's
  path, ``<output_path>dt=YYYY-MM-DD/``, and no other (a Glue DynamicFrame sink would add new files
  beside the old ones and ignores ``partitionOverwriteMode``). An empty day writes nothing and
  succeeds.
- Lines that cannot be read with the declared schema (bad JSON, a wrong type, an unparseable
  timestamp, a missing required field) are counted and reported, and left out.
- No catalog call: the tables use partition projection, so a written partition is queryable at once.

Everything but ``main`` is plain Spark DataFrame code, tested in a local Spark session on real
output of the functions (``infra/tests/test_glue_jobs.py``); ``main`` is the Glue shell.
"""

import datetime
import json
import math
import re
import sys

CORRUPT = "_corrupt_record"
TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss[.SSSSSSSSS]XXX"

# ---------------------------------------------------------------- shared

def validate_day(day):
    """Returns the day as YYYY-MM-DD or raises ValueError with a clear message."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day or ""):
        raise ValueError(f"--date must be YYYY-MM-DD, got {day!r}")
    datetime.date.fromisoformat(day)
    return day


def normalise_s3_path(path, name):
    """Checks an s3:// path and gives it exactly one trailing slash."""
    if not path or not path.startswith("s3://") or len(path) <= len("s3://"):
        raise ValueError(f"--{name} must be an s3:// path, got {path!r}")
    return path.rstrip("/") + "/"


def resolve_day(day, today=None):
    """``auto`` is yesterday (UTC): the scheduled fallback run processes the finished day."""
    if day == "auto":
        today = today or datetime.datetime.now(datetime.timezone.utc).date()
        return (today - datetime.timedelta(days=1)).isoformat()
    return validate_day(day)


def plan_day(args, today=None):
    """The day and the paths of a one-day job: ``--input_path auto`` is the day's partition under
    --curated_base; an explicit input path must be that day's partition."""
    day = resolve_day(args["date"], today)
    input_path = args["input_path"]
    if input_path == "auto":
        input_path = normalise_s3_path(args.get("curated_base"), "curated_base") + f"dt={day}/"
    input_path = normalise_s3_path(input_path, "input_path")
    output_path = normalise_s3_path(args["output_path"], "output_path")
    if f"dt={day}" not in input_path:
        raise ValueError(f"--input_path {input_path} is not the partition of {day}")
    return {"day": day, "input_path": input_path, "output_path": output_path,
            "partition_path": f"{output_path}dt={day}/"}


def read_curated(spark, path, schema):
    """Curated gzip NDJSON under ``path`` with a declared schema; a line that does not fit it
    keeps its text in ``_corrupt_record``. A missing path is an empty day."""
    from pyspark.sql.utils import AnalysisException
    reader = (spark.read.schema(schema).option("mode", "PERMISSIVE")
              .option("columnNameOfCorruptRecord", CORRUPT)
              .option("timestampFormat", TIMESTAMP_FORMAT))
    try:
        return reader.json(path)
    except AnalysisException as e:
        if "PATH_NOT_FOUND" in str(e) or "Path does not exist" in str(e):
            return spark.createDataFrame([], schema)
        raise


def split_malformed(rows, required):
    """(rows that can be used, count of all rows, count of rows that cannot be used: corrupt lines
    and missing fields)."""
    from pyspark.sql import functions as F
    bad = F.col(CORRUPT).isNotNull()
    for field in required:
        bad = bad | F.col(field).isNull()
    # Spark refuses a query on the corrupt-record column alone unless the rows are cached.
    rows = rows.cache()
    return rows.where(~bad).drop(CORRUPT), rows.count(), rows.where(bad).count()


def dedupe_latest(rows, key="_id", order=("_source", "_line")):
    """One row per key: the one that sorts last by ``order`` (a corrected re-delivery is a later
    source object, so it wins; identical copies collapse)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    latest = Window.partitionBy(key).orderBy(*[F.col(c).desc() for c in order])
    return rows.withColumn("_rank", F.row_number().over(latest)).where(F.col("_rank") == 1).drop("_rank")


def write_day(frame, output_path, day, rows_per_file=0):
    """Parquet files under ``<output_path>dt=<day>/``, replacing what a previous run wrote there
    and nothing else. Writing the partition's own path (rather than ``partitionBy``) keeps the
    frame's row order in the files; ``rows_per_file`` caps the rows of each file."""
    writer = frame.drop("dt").write.mode("overwrite")
    if rows_per_file:
        writer = writer.option("maxRecordsPerFile", rows_per_file)
    writer.parquet(f"{output_path.rstrip('/')}/dt={day}")


# ---------------------------------------------------------------- daily_accounts

DAILY_COLUMNS = ["account_id", "currency", "transaction_count", "total_amount_minor",
                 "first_event_time", "last_event_time", "merchant_count", "dt"]
# Fields a curated transaction must have to be counted.
TRANSACTION_FIELDS = ["_id", "_source", "_line", "account_id", "amount_minor", "currency", "event_time"]


def plan_daily(args, today=None):
    """Everything the daily job will do, decided from its arguments before Spark starts."""
    return plan_day(args, today)


def transaction_schema():
    """What s3-ingest writes per line (see functions/s3-ingest), plus the corrupt-record column."""
    from pyspark.sql import types as T
    return T.StructType([
        T.StructField("_id", T.StringType()),
        T.StructField("_source", T.StringType()),
        T.StructField("_line", T.LongType()),
        T.StructField("transaction_id", T.StringType()),
        T.StructField("account_id", T.StringType()),
        T.StructField("amount", T.StringType()),
        T.StructField("amount_minor", T.LongType()),
        T.StructField("currency", T.StringType()),
        T.StructField("event_time", T.TimestampType()),
        T.StructField("merchant", T.StringType()),
        T.StructField("category", T.StringType()),
        T.StructField("country", T.StringType()),
        T.StructField(CORRUPT, T.StringType()),
    ])


def aggregate_accounts(unique, day):
    """Per account and currency: count, exact total in minor units, first and last event time,
    distinct merchants; ``dt`` is the day."""
    from pyspark.sql import functions as F
    return (unique.groupBy("account_id", "currency")
            .agg(F.count("*").alias("transaction_count"),
                 F.sum("amount_minor").alias("total_amount_minor"),
                 F.min("event_time").alias("first_event_time"),
                 F.max("event_time").alias("last_event_time"),
                 F.countDistinct("merchant").cast("long").alias("merchant_count"))
            .withColumn("dt", F.lit(day))
            .select(*DAILY_COLUMNS))


def run_daily(spark, p, input_path=None, output_path=None):
    """The whole job for one day; the paths default to the plan's (tests pass local copies).
    Returns the report the job prints."""
    rows = read_curated(spark, input_path or p["input_path"], transaction_schema())
    valid, total, malformed = split_malformed(rows, TRANSACTION_FIELDS)
    # Cached: counted for the report, then aggregated.
    unique = dedupe_latest(valid).cache()
    daily = aggregate_accounts(unique, p["day"]).cache()
    report = {"day": p["day"], "rows": total, "malformed": malformed,
              "unique": unique.count(), "aggregates": daily.count(), "output": p["partition_path"]}
    if report["aggregates"]:
        write_day(daily, output_path or p["output_path"], p["day"])
    else:
        report["output"] = None
    return report


# ---------------------------------------------------------------- compact_readings

READING_FIELDS = ["_id", "device_id", "event_time", "temperature_c"]
READING_COLUMNS = ["_id", "device_id", "event_time", "temperature_c", "humidity_pct", "battery_pct",
                   "arrival_time", "hour", "dt"]
DEFAULT_ROWS_PER_FILE = 5_000_000


def plan_compaction(args, today=None):
    """Everything the compaction will do, decided from its arguments before Spark starts."""
    raw = args.get("rows_per_file") or DEFAULT_ROWS_PER_FILE
    try:
        rows_per_file = int(raw)
    except ValueError:
        rows_per_file = 0
    if rows_per_file < 1:
        raise ValueError(f"--rows_per_file must be a positive whole number, got {raw!r}")
    return dict(plan_day(args, today), rows_per_file=rows_per_file)


def reading_schema():
    """What kinesis-processor writes per line (see functions/kinesis-processor), plus the
    corrupt-record column."""
    from pyspark.sql import types as T
    return T.StructType([
        T.StructField("_id", T.StringType()),
        T.StructField("device_id", T.StringType()),
        T.StructField("event_time", T.TimestampType()),
        T.StructField("temperature_c", T.DoubleType()),
        T.StructField("humidity_pct", T.DoubleType()),
        T.StructField("battery_pct", T.DoubleType()),
        T.StructField("arrival_time", T.TimestampType()),
        T.StructField(CORRUPT, T.StringType()),
    ])


def compact(unique, day, rows, rows_per_file):
    """The day's rows in ``ceil(rows / rows_per_file)`` range partitions by device, each sorted by
    device and event time; ``hour`` (the curated partition, UTC) and ``dt`` as columns."""
    from pyspark.sql import functions as F
    files = max(1, math.ceil(rows / rows_per_file))
    return (unique.withColumn("hour", F.date_format(F.col("event_time"), "HH"))
            .withColumn("dt", F.lit(day))
            .repartitionByRange(files, "device_id")
            .sortWithinPartitions("device_id", "event_time")
            .select(*READING_COLUMNS))


def count_files(spark, path):
    """Data files under ``path`` (any file system Spark reads), 0 when it does not exist."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(hadoop_path):
        return 0
    files, listing = 0, fs.listFiles(hadoop_path, True)
    while listing.hasNext():
        name = listing.next().getPath().getName()
        if not name.startswith(("_", ".")):
            files += 1
    return files


def run_compaction(spark, p, input_path=None, output_path=None):
    """The whole job for one day; the paths default to the plan's (tests pass local copies).
    Returns the report the job prints."""
    source = input_path or p["input_path"]
    target = output_path or p["output_path"]
    rows = read_curated(spark, source, reading_schema())
    valid, total, malformed = split_malformed(rows, READING_FIELDS)
    unique = dedupe_latest(valid, order=("arrival_time",)).cache()
    count = unique.count()
    report = {"day": p["day"], "rows": total, "malformed": malformed, "unique": count,
              "files_before": count_files(spark, source), "files_after": 0, "output": None}
    if count:
        write_day(compact(unique, p["day"], count, p["rows_per_file"]), target, p["day"], p["rows_per_file"])
        report["files_after"] = count_files(spark, target.rstrip("/") + f"/dt={p['day']}")
        report["output"] = p["partition_path"]
    return report


# ---------------------------------------------------------------- Glue shell

JOBS = {"daily_accounts": (plan_daily, run_daily), "compact_readings": (plan_compaction, run_compaction)}
OPTIONAL_ARGS = ["rows_per_file"]


def main():
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    args = getResolvedOptions(sys.argv, ["JOB_NAME", "runnel_job", "date", "input_path", "output_path", "curated_base"])
    for name in OPTIONAL_ARGS:
        if f"--{name}" in sys.argv:
            args.update(getResolvedOptions(sys.argv, [name]))
    if args["runnel_job"] not in JOBS:
        raise ValueError(f"--runnel_job must be one of {sorted(JOBS)}, got {args['runnel_job']!r}")
    plan, run = JOBS[args["runnel_job"]]
    p = plan(args)
    glue = GlueContext(SparkContext.getOrCreate())
    job = Job(glue)
    job.init(args["JOB_NAME"], args)
    report = run(glue.spark_session, p)
    print(json.dumps(report))
    if report["malformed"]:
        print(f"WARNING: {report['malformed']} malformed line(s) under {p['input_path']} were left out")
    job.commit()


if __name__ == "__main__":
    main()
