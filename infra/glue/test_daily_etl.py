"""Tests of the Glue job's planning and rules that run without Spark."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import daily_etl  # noqa: E402

ARGS = {"JOB_NAME": "runnel-dev-daily-etl", "date": "2026-11-22",
        "input_path": "s3://curated/transactions/dt=2026-11-22",
        "output_path": "s3://analytics/daily_accounts", "database": "runnel_dev", "table": "daily_accounts",
        "curated_base": "s3://curated/transactions"}


class PlanTest(unittest.TestCase):
    def test_plan_normalises_paths(self):
        p = daily_etl.plan(ARGS)
        self.assertEqual(p["input_path"], "s3://curated/transactions/dt=2026-11-22/")
        self.assertEqual(p["partition_path"], "s3://analytics/daily_accounts/dt=2026-11-22/")
        self.assertEqual(p["partition_keys"], ["dt"])

    def test_scheduled_run_takes_yesterday(self):
        import datetime
        p = daily_etl.plan(dict(ARGS, date="auto", input_path="auto"), today=datetime.date(2026, 3, 1))
        self.assertEqual(p["day"], "2026-02-28")
        self.assertEqual(p["input_path"], "s3://curated/transactions/dt=2026-02-28/")

    def test_bad_arguments_are_clear_errors(self):
        for key, value, message in [("date", "22/11/2026", "--date must be YYYY-MM-DD"),
                                    ("date", "2026-02-30", "day is out of range"),
                                    ("output_path", "/tmp/out", "--output_path must be an s3:// path"),
                                    ("input_path", "s3://curated/transactions/dt=2026-11-21/", "is not the partition of")]:
            with self.subTest(key=key, value=value):
                with self.assertRaisesRegex(ValueError, message):
                    daily_etl.plan(dict(ARGS, **{key: value}))


class RulesTest(unittest.TestCase):
    def rows(self):
        base = {"account_id": "acc-1", "currency": "EUR", "merchant": "Shop", "_source": "s3://raw/a.csv"}
        return [
            dict(base, _id="tx-1", _line=2, amount_minor=100, event_time="2026-11-22T08:00:00Z"),
            dict(base, _id="tx-1", _line=2, amount_minor=100, event_time="2026-11-22T08:00:00Z"),
            dict(base, _id="tx-2", _line=3, amount_minor=250, event_time="2026-11-22T09:00:00Z", merchant="Cafe"),
            dict(base, _id="tx-3", _line=4, amount_minor=-50, event_time="2026-11-22T07:00:00Z", account_id="acc-2"),
            dict(base, _id="tx-2", _line=9, amount_minor=300, event_time="2026-11-22T09:00:00Z", merchant="Cafe",
                 _source="s3://raw/b.csv"),
        ]

    def test_duplicates_keep_the_latest_copy(self):
        unique = daily_etl.pick_latest(self.rows())
        self.assertEqual(sorted(r["_id"] for r in unique), ["tx-1", "tx-2", "tx-3"])
        self.assertEqual([r["amount_minor"] for r in unique if r["_id"] == "tx-2"], [300])

    def test_aggregate_per_account_and_currency(self):
        out = daily_etl.aggregate(daily_etl.pick_latest(self.rows()), "2026-11-22")
        self.assertEqual(out[0], {"dt": "2026-11-22", "account_id": "acc-1", "currency": "EUR",
                                  "transaction_count": 2, "total_amount_minor": 400,
                                  "first_event_time": "2026-11-22T08:00:00Z",
                                  "last_event_time": "2026-11-22T09:00:00Z", "merchant_count": 2})
        self.assertEqual(out[1]["total_amount_minor"], -50)
        self.assertEqual(list(out[0]), daily_etl.AGGREGATE_COLUMNS)


if __name__ == "__main__":
    unittest.main()
