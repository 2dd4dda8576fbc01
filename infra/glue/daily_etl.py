"""Runnel daily ETL (AWS Glue 4.0/5.0, PySpark).

Reads one day of curated transactions (gzip NDJSON written by s3-ingest under
``<input_path>`` = ``s3://curated/transactions/dt=YYYY-MM-DD/``), drops duplicate
records by ``_id`` (at-least-once delivery upstream), aggregates per account,
currency and day, and writes Parquet partitioned by ``dt`` to ``<output_path>``,
registering the partition in the Glue Data Catalog so Athena can query it.

Job arguments: --date, --input_path, --output_path, --database, --table,
--curated_base (--run_id is informational). ``--date auto`` (the scheduled fallback
run) means yesterday in UTC, and ``--input_path auto`` the day's partition under
--curated_base. Re-running a day replaces that day's partition.

The Spark and Glue imports live inside ``main`` so the planning functions can be
tested without a Spark installation (``python3 -m unittest infra/glue/test_daily_etl.py``).
"""

import datetime
import re
import sys

REQUIRED_ARGS = ["JOB_NAME", "date", "input_path", "output_path", "database", "table", "curated_base"]
AGGREGATE_COLUMNS = ["dt", "account_id", "currency", "transaction_count", "total_amount_minor",
                     "first_event_time", "last_event_time", "merchant_count"]


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


def plan(args, today=None):
    """Everything the job will do, decided from its arguments before Spark starts."""
    day = resolve_day(args["date"], today)
    input_path = args["input_path"]
    if input_path == "auto":
        input_path = normalise_s3_path(args.get("curated_base"), "curated_base") + f"dt={day}/"
    input_path = normalise_s3_path(input_path, "input_path")
    output_path = normalise_s3_path(args["output_path"], "output_path")
    if f"dt={day}" not in input_path:
        raise ValueError(f"--input_path {input_path} is not the partition of {day}")
    return {
        "day": day,
        "input_path": input_path,
        "output_path": output_path,
        "partition_path": f"{output_path}dt={day}/",
        "database": args["database"],
        "table": args["table"],
        "partition_keys": ["dt"],
        "dedupe_key": "_id",
        # Keep the copy from the latest source line: a corrected re-delivery wins.
        "dedupe_order": ["_source", "_line"],
    }


def pick_latest(records, key="_id", order=("_source", "_line")):
    """The rule the Spark job applies with a window: one record per key, the last by order."""
    chosen = {}
    for r in records:
        k = r[key]
        if k not in chosen or tuple(r[o] for o in order) > tuple(chosen[k][o] for o in order):
            chosen[k] = r
    return list(chosen.values())


def aggregate(records, day):
    """The aggregation the Spark job performs, on plain dicts (used to test the rule)."""
    groups = {}
    for r in records:
        g = groups.setdefault((r["account_id"], r["currency"]), {
            "dt": day, "account_id": r["account_id"], "currency": r["currency"],
            "transaction_count": 0, "total_amount_minor": 0,
            "first_event_time": r["event_time"], "last_event_time": r["event_time"], "merchants": set()})
        g["transaction_count"] += 1
        g["total_amount_minor"] += int(r["amount_minor"])
        g["first_event_time"] = min(g["first_event_time"], r["event_time"])
        g["last_event_time"] = max(g["last_event_time"], r["event_time"])
        g["merchants"].add(r["merchant"])
    out = []
    for g in groups.values():
        g["merchant_count"] = len(g.pop("merchants"))
        out.append({c: g[c] for c in AGGREGATE_COLUMNS})
    return sorted(out, key=lambda g: (g["account_id"], g["currency"]))


def main():
    from awsglue.context import GlueContext
    from awsglue.dynamicframe import DynamicFrame
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    args = getResolvedOptions(sys.argv, REQUIRED_ARGS)
    p = plan(args)
    sc = SparkContext.getOrCreate()
    glue = GlueContext(sc)
    spark = glue.spark_session
    # Replace only the partitions written, so re-running a day leaves other days alone.
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    job = Job(glue)
    job.init(args["JOB_NAME"], args)

    rows = spark.read.json(p["input_path"])
    if rows.rdd.isEmpty():
        print(f"no input under {p['input_path']}; nothing to do")
        job.commit()
        return
    latest = Window.partitionBy(p["dedupe_key"]).orderBy(*[F.col(c).desc() for c in p["dedupe_order"]])
    unique = (rows.withColumn("_rank", F.row_number().over(latest))
              .where(F.col("_rank") == 1).drop("_rank"))
    daily = (unique.groupBy("account_id", "currency")
             .agg(F.count("*").alias("transaction_count"),
                  F.sum(F.col("amount_minor").cast("long")).alias("total_amount_minor"),
                  F.min("event_time").alias("first_event_time"),
                  F.max("event_time").alias("last_event_time"),
                  F.countDistinct("merchant").alias("merchant_count"))
             .withColumn("dt", F.lit(p["day"]))
             .select(*AGGREGATE_COLUMNS))

    sink = glue.getSink(connection_type="s3", path=p["output_path"], enableUpdateCatalog=True,
                        updateBehavior="UPDATE_IN_DATABASE", partitionKeys=p["partition_keys"])
    sink.setFormat("glueparquet", compression="snappy")
    sink.setCatalogInfo(catalogDatabase=p["database"], catalogTableName=p["table"])
    sink.writeFrame(DynamicFrame.fromDF(daily, glue, "daily"))
    print(f"{p['day']}: {rows.count()} rows, {unique.count()} unique, "
          f"{daily.count()} account aggregates -> {p['partition_path']}")
    job.commit()


if __name__ == "__main__":
    main()
