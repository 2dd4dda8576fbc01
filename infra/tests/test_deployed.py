"""Checks the stack that scripts/deploy-emulator created from infra/template.yaml.

Run inside scripts/with-emulator after the deploy (make test does both):
    .tools/lambda/bin/python -m unittest infra/tests/test_deployed.py

Settings the emulator applies are checked on the live resources; settings it accepts but does not
model (KMS on the stream, topic, buckets and function environment) are checked in the processed
template the emulator's CloudFormation holds.
"""
import base64
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import unittest

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from support import ndjson_objects, run  # noqa: E402

STACK = os.environ.get("RUNNEL_STACK", "runnel-emu")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def client(name):
    return boto3.client(name, region_name="us-east-1")


class DeployedStack(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cfn = client("cloudformation")
        stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        cls.status = stack["StackStatus"]
        cls.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        body = cfn.get_template(StackName=STACK, TemplateStage="Processed")["TemplateBody"]
        cls.template = body if isinstance(body, dict) else json.loads(body)
        cls.resources = {r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]}

    def inbox(self):
        """A new queue subscribed to the alert topic."""
        sqs = client("sqs")
        url = sqs.create_queue(QueueName=f"{STACK}-test-inbox-{time.time_ns()}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        client("sns").subscribe(TopicArn=self.outputs["AlertTopicArn"], Protocol="sqs", Endpoint=arn)
        return url

    def alert(self, inbox, wanted, timeout=90):
        """The first alert (its JSON part) in `inbox` for which `wanted` holds."""
        sqs = client("sqs")
        deadline = time.time() + timeout
        while time.time() < deadline:
            for m in sqs.receive_message(QueueUrl=inbox, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", []):
                body = json.loads(m["Body"])["Message"]
                doc = json.loads(body.split("--- alert (JSON) ---\n")[1])
                if wanted(doc):
                    return doc
        self.fail(f"no such alert within {timeout} s")

    def test_stack_is_complete_with_outputs(self):
        self.assertIn(self.status, ("CREATE_COMPLETE", "UPDATE_COMPLETE"))
        for key in ["StreamName", "RawBucketName", "CuratedBucketName", "QuarantineBucketName", "AlertTopicArn", "AlertBusName", "GlueJobName"]:
            self.assertIn(key, self.outputs)
        self.assertEqual(self.outputs["StreamName"], "runnel-emu-iot")

    def test_kinesis_mapping_cannot_be_blocked_by_bad_data(self):
        maps = [m for m in client("lambda").list_event_source_mappings(FunctionName=self.outputs["KinesisProcessorFunctionName"])["EventSourceMappings"]]
        self.assertEqual(len(maps), 1)
        m = maps[0]
        self.assertTrue(m["EventSourceArn"].endswith(":stream/runnel-emu-iot"))
        self.assertEqual(m["FunctionResponseTypes"], ["ReportBatchItemFailures"])
        self.assertTrue(m["BisectBatchOnFunctionError"])
        self.assertEqual((m["BatchSize"], m["MaximumRetryAttempts"], m["MaximumRecordAgeInSeconds"], m["ParallelizationFactor"]), (500, 10, 21600, 1))
        self.assertEqual(m["MaximumBatchingWindowInSeconds"], 5)
        self.assertEqual(m["DestinationConfig"]["OnFailure"]["Destination"], self.failed_batches_arn())

    def failed_batches_arn(self):
        return f"arn:aws:s3:::{self.outputs['FailedBatchesBucketName']}"

    def test_mapping_roles_may_write_to_the_failed_batches_bucket(self):
        """SAM grants each stream mapping's role what an S3 on-failure destination needs (the
        emulator does not enforce IAM: checked in the processed template)."""
        roles = {"KinesisProcessorFunctionRole", "TableProcessorFunctionRole"}
        for name in roles:
            statements = [st for policy in self.template["Resources"][name]["Properties"]["Policies"]
                          for st in policy["PolicyDocument"]["Statement"]]
            with self.subTest(role=name):
                granted = {(st["Action"], "*" in json.dumps(st["Resource"])) for st in statements
                           if "FailedBatchesBucket" in json.dumps(st["Resource"])}
                self.assertEqual(granted, {("s3:PutObject", True), ("s3:ListBucket", False)})

    def test_readings_queue_is_fifo_with_a_dead_letter_queue(self):
        # make deploy-test deploys with ReadingsQueueType=fifo.
        maps = client("lambda").list_event_source_mappings(FunctionName=self.outputs["QueueProcessorFunctionName"])["EventSourceMappings"]
        self.assertEqual(len(maps), 1)
        m = maps[0]
        self.assertTrue(m["EventSourceArn"].endswith(":runnel-emu-readings.fifo"))
        self.assertEqual(m["FunctionResponseTypes"], ["ReportBatchItemFailures"])
        self.assertEqual(m["BatchSize"], 10)
        attrs = client("sqs").get_queue_attributes(QueueUrl=self.outputs["ReadingsQueueUrl"], AttributeNames=["All"])["Attributes"]
        self.assertEqual(attrs["FifoQueue"], "true")
        self.assertEqual(attrs["VisibilityTimeout"], "360")
        redrive = json.loads(attrs["RedrivePolicy"])
        self.assertTrue(redrive["deadLetterTargetArn"].endswith(":runnel-emu-readings-dlq.fifo"))
        self.assertEqual(int(redrive["maxReceiveCount"]), 5)

    def test_queue_readings_land_once_each_and_poison_is_quarantined(self):
        sqs, s3 = client("sqs"), client("s3")
        url = self.outputs["ReadingsQueueUrl"]
        run = str(time.time_ns())
        sent = []
        for minute in range(3):
            for device in ["sensor-0001", "sensor-0002"]:
                body = json.dumps({"device_id": device, "ts": f"2026-11-23T09:{minute:02d}:00Z", "temperature": 20 + minute, "note": run})
                sent.append(sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=device)["MessageId"])
        poison = sqs.send_message(QueueUrl=url, MessageBody='{"device_id": "sensor-0001", "ts":', MessageGroupId="sensor-0001")["MessageId"]
        curated, quarantine = self.outputs["CuratedBucketName"], self.outputs["QuarantineBucketName"]

        def ids(bucket, prefix, messages):
            return sorted(d["_id"] for d in ndjson_objects(s3, bucket, prefix) if d["_id"].split(":")[1] in messages)

        want = sorted(f"runnel-emu-readings.fifo:{m}:0" for m in sent)
        deadline = time.time() + 60
        while time.time() < deadline and (ids(curated, "iot/dt=2026-11-23/", sent) != want or not ids(quarantine, "quarantine/iot/", [poison])):
            time.sleep(1)
        self.assertEqual(ids(curated, "iot/dt=2026-11-23/", sent), want)
        self.assertEqual(ids(quarantine, "quarantine/iot/", [poison]), [f"runnel-emu-readings.fifo:{poison}:0"])

    def test_replay_lands_a_given_up_batch_exactly_once_after_a_partial_write(self):
        """`runnel replay` from a Kinesis on-failure record (SQS form: the range, read again from the
        stream) and from an S3 one (the payload, stored in the failed-batches bucket, alerted on),
        against the deployed function; before each replay after the first, half of what was
        written is deleted, as a partial write leaves it."""
        kinesis, s3 = client("kinesis"), client("s3")
        build = run(["cargo", "build", "-q", "-p", "runnel-cli"], timeout=1200)
        self.assertEqual(build.returncode, 0, build.stderr)
        runnel = os.path.join(ROOT, "target", "debug", "runnel")
        stream = f"replay-{time.time_ns()}"
        kinesis.create_stream(StreamName=stream, ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
        day = "2026-10-05"  # this test's own partition
        entries = [{"Data": json.dumps({"device_id": f"sensor-{i:04d}", "ts": f"{day}T08:{i:02d}:00Z", "temperature": 20.5}).encode(), "PartitionKey": f"sensor-{i:04d}"} for i in range(20)]
        entries[7] = {"Data": b'{"device_id": "sensor-0007", "ts":', "PartitionKey": "poison"}
        entries[13] = {"Data": json.dumps({"device_id": "sensor-0013", "ts": f"{day}T08:13:00Z", "temperature": 900}).encode(), "PartitionKey": "poison"}
        put = kinesis.put_records(StreamName=stream, Records=entries)
        self.assertEqual(put["FailedRecordCount"], 0)
        seqs = [r["SequenceNumber"] for r in put["Records"]]
        shard = put["Records"][0]["ShardId"]
        function = self.outputs["KinesisProcessorFunctionName"]
        record = {
            "requestContext": {"requestId": "r-1", "functionArn": f"arn:aws:lambda:us-east-1:000000000000:function:{function}", "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0", "timestamp": "2026-10-05T08:30:00.000Z",
            "KinesisBatchInfo": {"shardId": shard, "startSequenceNumber": seqs[0], "endSequenceNumber": seqs[-1], "batchSize": len(seqs), "streamArn": arn},
        }
        curated, quarantine = self.outputs["CuratedBucketName"], self.outputs["QuarantineBucketName"]
        good = sorted(f"{shard}:{s}:0" for i, s in enumerate(seqs) if i not in (7, 13))
        bad = sorted(f"{shard}:{seqs[i]}:0" for i in (7, 13))

        def landed():
            docs = ndjson_objects(s3, curated, f"iot/dt={day}/")
            entries = [d for d in ndjson_objects(s3, quarantine, "quarantine/iot/") if d["_id"] in bad]
            return sorted(d["_id"] for d in docs), sorted(d["_id"] for d in entries)

        def replay(*args, stdin=None):
            out = subprocess.run([runnel, "replay", *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=ROOT)
            self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
            return out

        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(record, f)
            f.flush()
            first = replay("--record", f.name)  # the function named by the record
        self.assertIn("20 records", first.stdout)
        self.assertEqual(landed(), (good, bad))

        # A partial write: half of the batch's output objects are gone.
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=curated, Prefix=f"iot/dt={day}/").get("Contents", []))
        self.assertGreater(len(keys), 1)
        for key in keys[::2]:
            s3.delete_object(Bucket=curated, Key=key)
        self.assertNotEqual(landed()[0], good)
        # The SQS destination's message body on standard input, the function given explicitly.
        replay("--record", "-", "--function", function, stdin=json.dumps(record))
        self.assertEqual(landed(), (good, bad))

        # The S3 destination's object carries the batch as `payload`. Written to the template's
        # failed-batches bucket (as Lambda writes it; the emulator's mappings never give up), it
        # reaches failure-alert through EventBridge; the alert's replay command, run as it is
        # after another partial write, replays the batch as it was.
        inbox = self.inbox()
        event = replay("--record", "-", "--print-event", stdin=json.dumps(record)).stdout
        failed = self.outputs["FailedBatchesBucketName"]
        key = f"aws/lambda/esm-uuid/{shard}/2026/10/05/2026-10-05T08.30.00-replay"
        s3.put_object(Bucket=failed, Key=key, Body=json.dumps({**record, "payload": event}).encode())
        alert = self.alert(inbox, lambda a: a["details"].get("stored_at") == f"s3://{failed}/{key}")
        self.assertEqual((alert["severity"], alert["source"]), ("CRITICAL", "kinesis"))
        self.assertEqual(alert["details"]["replay"], f"runnel replay --function {function} --record s3://{failed}/{key}")
        self.assertNotIn("sensor-0000", json.dumps(alert), "the batch is not in the alert")
        for gone in sorted(o["Key"] for o in s3.list_objects_v2(Bucket=curated, Prefix=f"iot/dt={day}/").get("Contents", []))[1::2]:
            s3.delete_object(Bucket=curated, Key=gone)
        self.assertNotEqual(landed()[0], good)
        replay(*shlex.split(alert["details"]["replay"])[2:])
        self.assertEqual(landed(), (good, bad))

        # Past the stream's retention (here: a range the shard never held), nothing is replayed.
        gone = {**record, "KinesisBatchInfo": {**record["KinesisBatchInfo"], "startSequenceNumber": "1" + seqs[0]}}
        out = subprocess.run([runnel, "replay", "--record", "-"], input=json.dumps(gone), capture_output=True, text=True, timeout=120, cwd=ROOT)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("no longer holds", out.stderr)

    def test_quarantine_lists_shows_and_redrives_through_the_deployed_function(self):
        """`runnel quarantine`: entries the function quarantined (still bad) beside entries an
        earlier rule had refused (valid now, written here as the processor writes them); a redrive
        lands the valid ones once under their original ids and leaves the rest; a second one adds
        nothing."""
        s3, lam = client("s3"), client("lambda")
        build = run(["cargo", "build", "-q", "-p", "runnel-cli"], timeout=1200)
        self.assertEqual(build.returncode, 0, build.stderr)
        runnel = os.path.join(ROOT, "target", "debug", "runnel")
        function = self.outputs["KinesisProcessorFunctionName"]
        curated, quarantine = self.outputs["CuratedBucketName"], self.outputs["QuarantineBucketName"]
        shard, day, arrival = "shardId-000000000009", "2026-09-07", 1788768000.5  # 2026-09-07T08:00:00.5Z

        def record(seq, data):
            return {"eventID": f"{shard}:{seq}", "eventSource": "aws:kinesis", "kinesis": {"sequenceNumber": seq, "partitionKey": "p", "data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": arrival}}

        poison = [b'{"device_id": "sensor-0001", "ts":', json.dumps({"device_id": "sensor-0002", "ts": f"{day}T08:00:00Z", "temperature": 900}).encode()]
        out = lam.invoke(FunctionName=function, Payload=json.dumps({"Records": [record(f"7100{i}", d) for i, d in enumerate(poison)]}).encode())
        self.assertEqual(json.loads(out["Payload"].read()), {"batchItemFailures": []})
        # Two readings an earlier rule refused, stored as the processor stores entries.
        valid = [json.dumps({"device_id": f"sensor-00{i}", "ts": f"{day}T09:{i:02d}:00Z", "temperature": 21.5}).encode() for i in (10, 11)]
        lines = [json.dumps({"_id": f"{shard}:7200{i}:0", "kind": "rejected", "reason": "device on the old block list", "stream": shard, "position": f"7200{i}", "document_index": 0, "partition_key": "p", "arrival": f"{day}T08:00:00.500Z", "source_arn": None, "data_base64": base64.b64encode(d).decode()}) for i, d in enumerate(valid)]
        s3.put_object(Bucket=quarantine, Key=f"quarantine/iot/dt={day}/{shard}-72000-00000.json", Body=("\n".join(lines) + "\n").encode())

        def cli(*args):
            out = subprocess.run([runnel, "quarantine", *args, "--bucket", quarantine], capture_output=True, text=True, timeout=120, cwd=ROOT)
            self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
            return out.stdout

        listing = cli("list", "--day", day)
        self.assertIn("4 entries", listing)
        for kind in ("json", "validation", "rejected"):
            self.assertIn(kind, listing)
        shown = cli("show", f"{shard}:72001:0")
        self.assertIn("device on the old block list", shown)
        self.assertIn('"device_id": "sensor-0011"', shown)

        def landed():
            return sorted(d["_id"] for d in ndjson_objects(s3, curated, f"iot/dt={day}/") if d["_id"].startswith(shard))

        redriven = cli("redrive", "--function", function, "--day", day)
        self.assertIn("4 entries: 2 landed (2 removed from quarantine), 2 still bad, 0 failed", redriven)
        self.assertEqual(landed(), [f"{shard}:72000:0", f"{shard}:72001:0"])
        self.assertIn("2 entries", cli("list", "--day", day))
        self.assertNotIn("rejected", cli("list", "--day", day))
        again = cli("redrive", "--function", function, "--day", day)
        self.assertIn("2 entries: 0 landed", again)
        self.assertEqual(landed(), [f"{shard}:72000:0", f"{shard}:72001:0"])

    def test_quarantined_rows_redrive_through_the_deployed_ingest_function(self):
        """Rows are entries like a stream's: the ingest function quarantines a bad row through the
        queue trigger; beside it, a row an earlier rule refused (valid now, written as ingest
        writes rows) lands on redrive under its id, once, and the bad row stays."""
        s3 = client("s3")
        build = run(["cargo", "build", "-q", "-p", "runnel-cli"], timeout=1200)
        self.assertEqual(build.returncode, 0, build.stderr)
        runnel = os.path.join(ROOT, "target", "debug", "runnel")
        function = self.outputs["S3IngestFunctionName"]
        raw, curated, quarantine = self.outputs["RawBucketName"], self.outputs["CuratedBucketName"], self.outputs["QuarantineBucketName"]
        day, prefix = "2026-09-08", "quarantine/transactions"
        header = "transaction_id,account_id,amount,currency,timestamp,merchant,category,country"
        key = f"transactions/dt={day}/redrive-{time.time_ns()}.csv"
        body = f"{header}\ntx-rd1,acc-1,7.25,EUR,{day}T10:00:00Z,Shop,food,FR\ntx-rd2,acc-1,1.005,EUR,{day}T10:00:00Z,Shop,food,FR\n"
        s3.put_object(Bucket=raw, Key=key, Body=body.encode())
        source = f"s3://{raw}/{key}"
        deadline, entries = time.time() + 60, []
        while time.time() < deadline and not entries:
            entries = [e for e in ndjson_objects(s3, quarantine, f"{prefix}/dt={day}/") if e["stream"] == source]
            time.sleep(1)
        self.assertEqual([(e["position"], e["kind"], e["row"]["csv_header"]) for e in entries], [("3", "validation", header)])
        refused = f"tx-rd3,acc-1,3.50,EUR,{day}T11:00:00Z,Shop,food,FR"
        earlier = {**entries[0], "_id": "tx-rd3", "kind": "rejected", "reason": "merchant on the old block list", "position": "9",
                   "data_base64": base64.b64encode(refused.encode()).decode()}
        s3.put_object(Bucket=quarantine, Key=f"{prefix}/dt={day}/earlier-rule.json", Body=(json.dumps(earlier) + "\n").encode())

        def cli(*args):
            out = subprocess.run([runnel, "quarantine", *args, "--bucket", quarantine, "--prefix", prefix], capture_output=True, text=True, timeout=120, cwd=ROOT)
            self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
            return out.stdout

        def landed():
            return sorted((d["_id"], d["_line"]) for d in ndjson_objects(s3, curated, f"transactions/dt={day}/") if d["_source"] == source)

        self.assertIn("2 entries", cli("list", "--day", day))
        redriven = cli("redrive", "--function", function, "--day", day)
        self.assertIn("2 entries: 1 landed (1 removed from quarantine), 1 still bad, 0 failed", redriven)
        self.assertIn("more than 2 decimal place(s)", redriven)
        self.assertEqual(landed(), [("tx-rd1", 2), ("tx-rd3", 9)])
        again = cli("redrive", "--function", function, "--day", day)
        self.assertIn("1 entries: 0 landed", again)
        self.assertEqual(landed(), [("tx-rd1", 2), ("tx-rd3", 9)])

    def test_table_stream_mapping_cannot_be_blocked_by_bad_data(self):
        # make deploy-test deploys with ReadingsTableStream=true.
        maps = client("lambda").list_event_source_mappings(FunctionName=self.outputs["TableProcessorFunctionName"])["EventSourceMappings"]
        self.assertEqual(len(maps), 1)
        m = maps[0]
        self.assertIn(":table/runnel-emu-readings/stream/", m["EventSourceArn"])
        self.assertEqual(m["FunctionResponseTypes"], ["ReportBatchItemFailures"])
        self.assertTrue(m["BisectBatchOnFunctionError"])
        self.assertEqual((m["MaximumRetryAttempts"], m["MaximumRecordAgeInSeconds"], m["ParallelizationFactor"]), (10, 21600, 1))
        self.assertEqual(m["DestinationConfig"]["OnFailure"]["Destination"], self.failed_batches_arn())
        table = client("dynamodb").describe_table(TableName=self.outputs["ReadingsTableName"])["Table"]
        self.assertEqual(table["StreamSpecification"]["StreamViewType"], "NEW_AND_OLD_IMAGES")

    def test_table_writes_land_as_readings(self):
        ddb, s3 = client("dynamodb"), client("s3")
        table = self.outputs["ReadingsTableName"]
        device = f"table-{time.time_ns()}"

        def put(minute, temperature):
            ddb.put_item(TableName=table, Item={"device_id": {"S": device}, "ts": {"S": f"2026-11-24T10:{minute:02d}:00Z"},
                                                "temperature": {"N": str(temperature)}, "unit": {"S": "C"}})

        put(0, 20.5)
        put(1, 21)
        put(1, 21.5)  # MODIFY: the new image lands too
        ddb.delete_item(TableName=table, Key={"device_id": {"S": device}, "ts": {"S": "2026-11-24T10:00:00Z"}})
        put(2, 999)  # out of range: quarantined
        curated, quarantine = self.outputs["CuratedBucketName"], self.outputs["QuarantineBucketName"]

        def landed():
            return sorted(d["temperature_c"] for d in ndjson_objects(s3, curated, "iot/dt=2026-11-24/") if d["device_id"] == device)

        def quarantined():
            return [q for q in ndjson_objects(s3, quarantine, "quarantine/iot/") if device.encode() in base64.b64decode(q["data_base64"])]

        deadline = time.time() + 60
        while time.time() < deadline and (len(landed()) < 3 or not quarantined()):
            time.sleep(1)
        self.assertEqual(landed(), [20.5, 21.0, 21.5])
        q = quarantined()
        self.assertEqual(len(q), 1)
        self.assertEqual(q[0]["kind"], "validation")
        self.assertTrue(q[0]["stream"].startswith("runnel-emu-readings-"), q[0]["stream"])

    def test_firehose_readings_are_transformed_partitioned_and_quarantined(self):
        # make deploy-test deploys with ReadingsFirehose=true.
        firehose, s3 = client("firehose"), client("s3")
        stream = self.outputs["ReadingsDeliveryStreamName"]
        device = f"firehose-{time.time_ns()}"
        good = [json.dumps({"device_id": device, "ts": f"2026-11-25T{hour:02d}:30:00Z", "temperature": 36 + hour, "unit": "F"}) for hour in (5, 6)]
        bad = json.dumps({"device_id": device, "ts": "2026-11-25T05:31:00Z", "temperature": 999})
        firehose.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": (r + "\n").encode()} for r in good + [bad]])
        curated, quarantine = self.outputs["CuratedBucketName"], self.outputs["QuarantineBucketName"]

        def landed():
            return {(d["event_time"][11:13], d["temperature_c"]) for d in ndjson_objects(s3, curated, "iot/dt=2026-11-25/") if d["device_id"] == device}

        def quarantined():
            return [q for q in ndjson_objects(s3, quarantine, "quarantine/iot/") if device.encode() in base64.b64decode(q["data_base64"])]

        deadline = time.time() + 120
        while time.time() < deadline and (len(landed()) < 2 or not quarantined()):
            time.sleep(2)
        # 41 °F and 42 °F, each under its own hour's partition.
        self.assertEqual(landed(), {("05", 5.0), ("06", 5.56)})
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=curated, Prefix="iot/dt=2026-11-25/").get("Contents", [])]
        self.assertTrue(any(k.startswith("iot/dt=2026-11-25/hour=05/") for k in keys), keys)
        self.assertEqual(len(quarantined()), 1)

    def test_raw_objects_reach_ingest_through_the_queue(self):
        # make deploy-test deploys with IngestTrigger=sqs: bucket notification -> queue -> s3-ingest.
        s3, sqs = client("s3"), client("sqs")
        attrs = sqs.get_queue_attributes(QueueUrl=self.outputs["IngestQueueUrl"], AttributeNames=["All"])["Attributes"]
        self.assertTrue(json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"].endswith(":runnel-emu-ingest-dlq"))
        raw = self.outputs["RawBucketName"]
        rule = [r for r in client("events").list_rules()["Rules"] if r["Name"].startswith(STACK) and raw in r["EventPattern"]]
        self.assertEqual([r["State"] for r in rule], ["DISABLED"])
        day = "2026-11-26"
        key = f"transactions/dt={day}/queued-{time.time_ns()}.csv"
        body = ("transaction_id,account_id,amount,currency,timestamp,merchant,category,country\n"
                f"tx-q1,acc-9,7.25,EUR,{day}T10:00:00Z,Queue Café,food,FR\n")
        s3.put_object(Bucket=self.outputs["RawBucketName"], Key=key, Body=body.encode())
        deadline = time.time() + 60
        rows = []
        while time.time() < deadline and not rows:
            rows = [r for r in ndjson_objects(s3, self.outputs["CuratedBucketName"], f"transactions/dt={day}/") if r.get("transaction_id") == "tx-q1"]
            time.sleep(1)
        self.assertEqual([r["merchant"] for r in rows], ["Queue Café"])

    def test_failure_queue_feeds_the_alert_function(self):
        maps = client("lambda").list_event_source_mappings(FunctionName=self.outputs["FailureAlertFunctionName"])["EventSourceMappings"]
        sources = sorted(m["EventSourceArn"].rsplit(":", 1)[1] for m in maps)
        self.assertEqual(sources, ["runnel-emu-function-failures"])
        self.assertTrue(all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in maps))

    def test_buckets_are_private_tls_only_and_versioned(self):
        s3 = client("s3")
        for key in ["RawBucketName", "CuratedBucketName", "QuarantineBucketName", "AnalyticsBucketName", "FailedBatchesBucketName"]:
            bucket = self.outputs[key]
            with self.subTest(bucket=bucket):
                block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
                self.assertTrue(all(block.values()))
                policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
                deny = [st for st in policy["Statement"] if st["Effect"] == "Deny"]
                self.assertEqual(deny[0]["Condition"], {"Bool": {"aws:SecureTransport": "false"}})
                self.assertEqual(s3.get_bucket_versioning(Bucket=bucket).get("Status"), "Enabled")
        for key in ["RawBucketName", "FailedBatchesBucketName"]:
            self.assertIn("EventBridgeConfiguration", s3.get_bucket_notification_configuration(Bucket=self.outputs[key]))
        # Lifecycle rules are accepted but not modelled by the emulator: checked as declared.
        rules = self.template["Resources"]["QuarantineBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        self.assertEqual(rules[0]["ExpirationInDays"], 90)
        rules = self.template["Resources"]["FailedBatchesBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        self.assertEqual(rules[0]["ExpirationInDays"], {"Ref": "FailedBatchRetentionDays"})

    def test_encryption_at_rest_is_declared_with_the_data_key(self):
        r = self.template["Resources"]
        self.assertEqual(r["ReadingsStream"]["Properties"]["StreamEncryption"]["EncryptionType"], "KMS")
        self.assertIn("KmsMasterKeyId", r["AlertTopic"]["Properties"])
        for name in ["RawBucket", "CuratedBucket", "QuarantineBucket", "AnalyticsBucket", "FailedBatchesBucket"]:
            sse = r[name]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
            self.assertEqual(sse["SSEAlgorithm"], "aws:kms", name)
        for name in ["FunctionFailureQueue", "RuleDeadLetterQueue", "AlertDeadLetterQueue", "ReadingsQueue", "ReadingsDeadLetterQueue"]:
            self.assertIn("KmsMasterKeyId", r[name]["Properties"], name)
        self.assertTrue(r["DataKey"]["Properties"]["EnableKeyRotation"])

    def test_rules_route_to_functions_with_dead_letter_queues(self):
        events = client("events")
        routes = set()
        for rule in events.list_rules()["Rules"]:
            if not rule["Name"].startswith(STACK):
                continue
            pattern = json.loads(rule["EventPattern"])
            bucket = pattern.get("detail", {}).get("bucket", {}).get("name", [None])[0]
            for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                routes.add((pattern["source"][0], pattern["detail-type"][0], bucket, t["Arn"].rsplit(":", 1)[1]))
                self.assertTrue(t["DeadLetterConfig"]["Arn"].endswith(":runnel-emu-rule-dlq"), rule["Name"])
        expected = {
            ("aws.s3", "Object Created", self.outputs["RawBucketName"], "runnel-emu-s3-ingest"),
            ("aws.s3", "Object Created", self.outputs["FailedBatchesBucketName"], "runnel-emu-failure-alert"),
            ("aws.glue", "Glue Job State Change", None, "runnel-emu-failure-alert"),
            ("aws.glue", "Glue Job Run Status", None, "runnel-emu-failure-alert"),
            ("aws.states", "Step Functions Execution Status Change", None, "runnel-emu-failure-alert"),
        }
        self.assertEqual(routes, expected)

    def test_functions_are_configured_from_the_template(self):
        lam = client("lambda")
        expect = {"KinesisProcessorFunctionName": (256, 60, "OUTPUT_BUCKET"), "QueueProcessorFunctionName": (256, 60, "SOURCE"),
                  "TableProcessorFunctionName": (256, 60, "SOURCE"), "FirehoseProcessorFunctionName": (256, 60, "SOURCE"),
                  "S3IngestFunctionName": (512, 900, "OUTPUT_BUCKET"),
                  "FailureAlertFunctionName": (128, 30, "ALERT_TOPIC_ARN")}
        for key, (memory, timeout, var) in expect.items():
            f = lam.get_function_configuration(FunctionName=self.outputs[key])
            with self.subTest(function=f["FunctionName"]):
                self.assertEqual((f["Runtime"], f["Handler"]), ("provided.al2023", "bootstrap"))
                self.assertEqual((f["MemorySize"], f["Timeout"]), (memory, timeout))
                self.assertEqual(f["LoggingConfig"]["LogFormat"], "JSON")
                self.assertIn(var, f["Environment"]["Variables"])
                # Declared for sam local only: with the default EndpointUrl it is absent.
                self.assertNotIn("AWS_ENDPOINT_URL", f["Environment"]["Variables"])

    def test_glue_jobs_tables_and_alarms_exist(self):
        glue = client("glue")
        for output, name, resource in [("GlueJobName", "daily_accounts", "DailyEtlJob"),
                                       ("CompactionJobName", "compact_readings", "CompactReadingsJob")]:
            job = glue.get_job(JobName=self.outputs[output])["Job"]
            with self.subTest(job=job["Name"]):
                self.assertEqual(job["Command"]["Name"], "glueetl")
                # sam package uploaded infra/glue/jobs.py under a content hash.
                bucket, key = job["Command"]["ScriptLocation"][len("s3://"):].split("/", 1)
                with open(os.path.join(ROOT, "infra", "glue", "jobs.py"), "rb") as f:
                    self.assertEqual(client("s3").get_object(Bucket=bucket, Key=key)["Body"].read(), f.read())
                self.assertEqual(job["DefaultArguments"]["--runnel_job"], name)
                self.assertEqual(job["GlueVersion"], "5.0")
                # Stuck runs emit "Glue Job Run Status" only with a notification delay (accepted
                # but not modelled by the emulator: checked in the processed template).
                props = self.template["Resources"][resource]["Properties"]
                self.assertGreater(props["NotificationProperty"]["NotifyDelayAfter"], 0)
        database = self.outputs["GlueDatabaseName"]
        for name in ["curated_readings", "curated_transactions", "compacted_readings", "daily_accounts", "device_minute_panes"]:
            table = glue.get_table(DatabaseName=database, Name=name)["Table"]
            with self.subTest(table=name):
                self.assertEqual(table["Parameters"]["projection.enabled"], "true")
                self.assertIn("${dt}", table["Parameters"]["storage.location.template"])
        alarms = {a["AlarmName"] for a in client("cloudwatch").describe_alarms()["MetricAlarms"]}
        for name in ["iterator-age", "kinesis-processor-errors", "queue-processor-errors", "readings-dead-letters", "table-processor-errors", "firehose-processor-errors", "s3-ingest-errors",
                     "failure-alert-errors", "rule-dlq-depth", "alert-dlq-depth"]:
            self.assertIn(f"{STACK}-{name}", alarms)

    def test_an_overheating_device_alerts_once_through_the_bus_to_the_topic(self):
        """Readings on the stream → kinesis-processor's rules → the alert bus → its rule → the topic."""
        sqs, url = client("sqs"), self.inbox()
        device = f"sensor-hot-{time.time_ns()}"
        # This test's own partition (dt=2026-10-06).
        readings = [{"device_id": device, "ts": f"2026-10-06T09:00:0{i}Z", "temperature": 85.0 + i, "unit": "C"} for i in range(3)]
        client("kinesis").put_records(StreamName=self.outputs["StreamName"], Records=[
            {"Data": json.dumps(r).encode(), "PartitionKey": device} for r in readings])
        rules, deadline = [], time.time() + 120
        while time.time() < deadline and len(rules) < 2:
            for m in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", []):
                event = json.loads(json.loads(m["Body"])["Message"])
                if event.get("detail-type") == "Runnel Rule Matched" and event["detail"]["key"] == {"device_id": device}:
                    rules.append(event["detail"]["rule"])
        self.assertEqual(sorted(rules), ["overheating", "too_hot"])
        # Nothing more arrives for the device: one alert per rule, key and window.
        for _ in range(3):
            for m in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", []):
                self.assertNotIn(device, m["Body"])

    def test_deployed_alert_function_runs_and_publishes(self):
        sqs = client("sqs")
        url = self.inbox()
        with open(os.path.join(ROOT, "events", "alert-sfn-failed.json")) as f:
            event = json.load(f)
        event["detail"]["executionArn"] += f"-{time.time()}"
        out = client("lambda").invoke(FunctionName=self.outputs["FailureAlertFunctionName"], Payload=json.dumps(event).encode())
        payload = json.loads(out["Payload"].read())
        self.assertNotIn("FunctionError", out, payload)
        self.assertEqual(payload["published"], 1, payload)
        got = []
        for _ in range(20):
            got += sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
            if got:
                break
        self.assertEqual(len(got), 1)
        self.assertTrue(json.loads(got[0]["Body"])["Subject"].startswith("[ERROR] runnel-emu: State machine runnel-dev-daily"))


if __name__ == "__main__":
    unittest.main()
