"""The device_minute aggregate in Flink SQL: the readings table over curated NDJSON and the
one-minute TUMBLE GROUP BY, shared by the comparison (scripts/flink-compare.py) and the benchmark
(bench/python/flink_throughput.py) so both run the same query."""

from pyflink.table import EnvironmentSettings, TableEnvironment

# Columns in the order the comparison reads them.
DEVICE_MINUTE = """
    SELECT device_id, DATE_FORMAT(window_start, 'yyyy-MM-dd''T''HH:mm:ss''Z''') AS window_start,
           COUNT(*) AS readings, MIN(temperature_c) AS t_min, MAX(temperature_c) AS t_max,
           CAST(SUM(CAST(temperature_c AS DECIMAL(14, 2))) AS STRING) AS t_sum,
           AVG(temperature_c) AS t_mean, MAX(humidity_pct) AS humidity_max,
           COUNT(DISTINCT temperature_c) AS distinct_temperatures
    FROM TABLE(TUMBLE(TABLE {table}, DESCRIPTOR(ts), INTERVAL '1' MINUTES))
    GROUP BY device_id, window_start, window_end
"""


def batch_environment(parallelism):
    """A batch TableEnvironment on a local mini cluster, times in UTC."""
    env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    env.get_config().set("table.local-time-zone", "UTC")
    env.get_config().set("parallelism.default", str(parallelism))
    return env


def create_readings(env, name, path):
    """Table `name` over the curated readings at `path` (NDJSON, one reading per line)."""
    env.execute_sql(f"""
        CREATE TABLE {name} (
            device_id STRING,
            event_time STRING,
            temperature_c DOUBLE,
            humidity_pct DOUBLE,
            battery_pct DOUBLE,
            ts AS TO_TIMESTAMP(REPLACE(REPLACE(event_time, 'T', ' '), 'Z', ''))
        ) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json',
                'json.ignore-parse-errors' = 'false')
    """)


def device_minute(table):
    """The aggregate's query over table `table`."""
    return DEVICE_MINUTE.format(table=table)
