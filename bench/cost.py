"""The monthly cost of the seeds' workload (3,000 messages of 1 KB per second) on Runnel on
Lambda, on Managed Service for Apache Flink and on Amazon Data Firehose, from the figures one
`make bench` run measured. Used by bench/report.py; every price is us-east-1's list price.

Runnel on Lambda, per month (M messages of B bytes):
    invocations = M / records per invocation
    compute     = M * B / (payload bytes per second on one core) * 1769 / 1024  GB-s
                  (CPU-bound work takes 1769 / memory times longer at `memory` MB, billed at
                  memory / 1024 GB: the product does not depend on memory below one vCPU)
                + invocations * S3 wait * memory / 1024                           GB-s
    S3 PUTs     = M * (curated + pane objects per message)
    cost        = invocations * $0.20/1M + GB-s * $0.0000133334 (arm64) + PUTs * $0.005/1000
Managed Flink: KPUs = ceil(messages/s / messages/s per KPU) (a KPU is one vCPU, measured here as
Flink SQL's marginal rate at parallelism 1), plus one orchestration KPU, $0.11 per KPU-hour, and
50 GB of running application storage per KPU at $0.10 per GB-month.
Firehose (landing only, no windows): GB ingested * $0.029, each record rounded up to 5 KB.
"""
import math

MESSAGES_PER_S = 3000
MESSAGE_BYTES = 1024
HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
GB = 2 ** 30

LAMBDA_REQUEST = 0.20 / 1e6
LAMBDA_GB_S_ARM64 = 0.0000133334
FULL_VCPU_MB = 1769
S3_PUT = 0.005 / 1000
FLINK_KPU_HOUR = 0.11
FLINK_STORAGE_GB_MONTH = 0.10
FLINK_STORAGE_GB_PER_KPU = 50
FIREHOSE_GB = 0.029
FIREHOSE_RECORD_ROUNDING = 5 * 1024

# Assumptions the machine cannot measure, written out where the table shows them.
# The template's kinesis-processor.
LAMBDA_MEMORY_MB = 256
# Time an invocation waits on its S3 PUTs (written concurrently), billed as duration.
S3_WAIT_S = 0.05


def lambda_month(payload_bytes_per_s, records_per_invocation, objects_per_message):
    """Runnel on Lambda: dollars per month by item, for a path that reads `payload_bytes_per_s`
    of messages per second on one core."""
    messages = MESSAGES_PER_S * SECONDS_PER_MONTH
    invocations = messages / records_per_invocation
    cpu_gb_s = messages * MESSAGE_BYTES / payload_bytes_per_s * FULL_VCPU_MB / 1024
    wait_gb_s = invocations * S3_WAIT_S * LAMBDA_MEMORY_MB / 1024
    items = {
        "requests": invocations * LAMBDA_REQUEST,
        "compute": (cpu_gb_s + wait_gb_s) * LAMBDA_GB_S_ARM64,
        "s3_puts": messages * objects_per_message * S3_PUT,
    }
    items["total"] = sum(items.values())
    return items


def flink_month(messages_per_s_per_kpu):
    """Managed Flink: dollars per month and the KPUs the application needs."""
    kpus = max(1, math.ceil(MESSAGES_PER_S / messages_per_s_per_kpu))
    compute = (kpus + 1) * HOURS_PER_MONTH * FLINK_KPU_HOUR
    storage = kpus * FLINK_STORAGE_GB_PER_KPU * FLINK_STORAGE_GB_MONTH
    return {"kpus": kpus, "compute": compute, "storage": storage, "total": compute + storage}


def firehose_month(messages_per_record):
    """Firehose Direct PUT: dollars per month with `messages_per_record` newline-delimited
    messages in each record (one: each 1 KB message is billed as 5 KB)."""
    records = MESSAGES_PER_S * SECONDS_PER_MONTH / messages_per_record
    record_bytes = (MESSAGE_BYTES + 1) * messages_per_record
    billed = math.ceil(record_bytes / FIREHOSE_RECORD_ROUNDING) * FIREHOSE_RECORD_ROUNDING
    return {"gb": records * billed / GB, "total": records * billed / GB * FIREHOSE_GB}
