"""The functions run by the tools users run them with: `sam local invoke`, `sam local start-lambda`
and `cargo lambda deploy`, each answer compared with the expected one, against the emulator.

Run by `make local-tools` (after `make sam-build`), inside scripts/with-docker and
scripts/with-emulator:
    .tools/lambda/bin/python -m unittest -v infra/tests/test_local_tools.py

How a container reaches the emulator: SAM starts each function container on Docker's default
bridge and connects it to the network given with `--docker-network`. The emulator listens on
127.0.0.1 only, so a relay (socat) listens on that network's gateway address, the host's side of
the bridge, and forwards to it; the functions get `AWS_ENDPOINT_URL=http://<gateway>:<port>`
through `--env-vars` (the template declares the variable, so sam local may set it).
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from support import (ROOT, TOOLS, Background, client, event, free_port, gzip_csv, log,  # noqa: E402
                     ndjson_objects, run, s3_event_for)

BUILD = os.path.join(ROOT, "infra", ".aws-sam", "build")
SAM = os.path.join(TOOLS, "sam")
STACK = "runnel-local"
NETWORK = "runnel-local"
# `cargo lambda deploy` test: the crates' [package.metadata.lambda.deploy] settings name resources
# in account 123456789012; the emulator treats a 12-digit access key as that account.
DEV_ACCOUNT = "123456789012"


def sequences(event_body):
    return {r["kinesis"]["sequenceNumber"] for r in event_body["Records"]}


def alert_inbox(topic_arn, name, **kwargs):
    """An SQS queue subscribed to the topic with raw delivery; returns (sqs client, queue URL)."""
    sqs, sns = client("sqs", **kwargs), client("sns", **kwargs)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return sqs, url


def receive_one(sqs, url):
    for _ in range(10):
        messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            return messages[0]["Body"]
    raise AssertionError(f"no message arrived in {url}")


# scripts/with-docker --optional says why when no engine can be had; the sam local tests are then
# skipped and the cargo-lambda ones still run.
DOCKER = os.environ.get("RUNNEL_DOCKER", "none") != "none"
needs_docker = unittest.skipUnless(DOCKER, os.environ.get("RUNNEL_DOCKER_WHY", "no Docker engine (scripts/with-docker)"))


def setUpModule():
    global OUTPUTS, ENV_FILE, RELAY, WORKDIR
    if not os.path.exists(os.path.join(BUILD, "template.yaml")):
        raise RuntimeError("infra/.aws-sam/build is missing: run `make sam-build` first")
    deploy = run([os.path.join(ROOT, "scripts", "deploy-emulator"), STACK], timeout=600)
    if deploy.returncode != 0:
        raise RuntimeError(f"deploy-emulator failed:\n{deploy.stdout[-3000:]}\n{deploy.stderr[-3000:]}")
    stack = client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    OUTPUTS = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}

    WORKDIR = tempfile.mkdtemp(prefix="runnel-local-")
    if not DOCKER:
        return
    if not shutil.which("socat"):
        raise RuntimeError("socat is needed to relay from the Docker network to the emulator (apt-get install socat)")
    if run(["docker", "network", "inspect", NETWORK]).returncode != 0:
        subprocess.run(["docker", "network", "create", NETWORK], check=True, capture_output=True)
    gateway = run(["docker", "network", "inspect", NETWORK, "-f", "{{(index .IPAM.Config 0).Gateway}}"]).stdout.strip()
    endpoint = urllib.parse.urlsplit(os.environ["AWS_ENDPOINT_URL"])
    RELAY = Background("relay", ["socat", f"TCP-LISTEN:{endpoint.port},bind={gateway},fork,reuseaddr",
                                 f"TCP:{endpoint.hostname}:{endpoint.port}"], gateway, endpoint.port)
    RELAY.url = f"http://{gateway}:{endpoint.port}"
    log(f"containers reach the emulator at {RELAY.url} (relay on Docker network {NETWORK}'s gateway)")

    curated, quarantine = OUTPUTS["CuratedBucketName"], OUTPUTS["QuarantineBucketName"]
    # What `!Ref` and `!Sub` give in AWS; sam local cannot resolve resources, so a run names them.
    env_vars = {
        "Parameters": {"AWS_ENDPOINT_URL": RELAY.url, "PIPELINE_NAME": STACK},
        "KinesisProcessorFunction": {"OUTPUT_BUCKET": curated, "QUARANTINE_BUCKET": quarantine},
        "S3IngestFunction": {
            "OUTPUT_BUCKET": curated,
            "QUARANTINE_BUCKET": quarantine,
            "GLUE_JOB_NAME": OUTPUTS["GlueJobName"],
            "GLUE_OUTPUT_PATH": f"s3://{OUTPUTS['AnalyticsBucketName']}/daily_accounts/",
        },
        "FailureAlertFunction": {"ALERT_TOPIC_ARN": OUTPUTS["AlertTopicArn"], "DEDUPE_BUCKET": curated},
    }
    ENV_FILE = os.path.join(WORKDIR, "env.json")
    with open(ENV_FILE, "w") as f:
        json.dump(env_vars, f, indent=2)


def tearDownModule():
    if "RELAY" in globals():
        RELAY.stop()
        run(["docker", "network", "rm", NETWORK])
    if "WORKDIR" in globals():
        shutil.rmtree(WORKDIR, ignore_errors=True)


def sam_options():
    options = ["-t", os.path.join(BUILD, "template.yaml"), "--env-vars", ENV_FILE, "--docker-network", NETWORK,
               "--parameter-overrides", "Architecture=x86_64", "--region", "us-east-1"]
    if os.environ.get("RUNNEL_DOCKER") == "private":
        # The engine cannot reach a registry; scripts/lambda-base-image built the base image.
        options.append("--skip-pull-image")
    return options


def sam_invoke(function, event_body):
    path = os.path.join(WORKDIR, f"{function}-event.json")
    with open(path, "w") as f:
        json.dump(event_body, f)
    done = run([SAM, "local", "invoke", function, "-e", path, *sam_options()])
    if done.returncode != 0:
        raise AssertionError(f"sam local invoke {function} failed:\n{done.stderr[-4000:]}")
    # SAM prints the function's answer on stdout; its own messages and the function's logs on stderr.
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer, done.stderr


@needs_docker
class SamLocalInvoke(unittest.TestCase):
    def test_kinesis_poison_batch_quarantines_the_bad_records(self):
        sample = event("kinesis-poison.json")
        answer, _ = sam_invoke("KinesisProcessorFunction", sample)
        log(f"sam local invoke KinesisProcessorFunction -e events/kinesis-poison.json -> {json.dumps(answer)}")
        self.assertEqual(answer, {"batchItemFailures": []}, "bad data is never retried")
        s3, ours = client("s3"), sequences(sample)
        landed = [d for d in ndjson_objects(s3, OUTPUTS["CuratedBucketName"], "iot/") if d["_id"].split(":")[1] in ours]
        quarantined = [q for q in ndjson_objects(s3, OUTPUTS["QuarantineBucketName"], "quarantine/iot/")
                       if any(seq in json.dumps(q) for seq in ours)]
        self.assertEqual(len(landed), 2, landed)
        self.assertEqual(sorted(q["kind"] for q in quarantined), ["json", "validation"], quarantined)

    def test_s3_ingest_reads_an_object_that_exists(self):
        s3 = client("s3")
        # Not the stack's raw bucket: its notification would have the emulator's copy of the
        # function ingest the object first.
        inbox = "runnel-local-inbox"
        s3.create_bucket(Bucket=inbox)
        key = "transactions/dt=2026-11-22/daily export Zürich café.csv.gz"
        body = gzip_csv([
            "tx-local-1,acc-1,12.50,CHF,2026-11-22T08:00:00Z,Café Zürich,food,CH",
            "tx-local-2,acc-1,oops,CHF,2026-11-22T08:05:00Z,Kiosk,,CH",
        ])
        notification = s3_event_for(s3, inbox, key, body)
        answer, _ = sam_invoke("S3IngestFunction", notification)
        log(f"sam local invoke S3IngestFunction -e <s3-put-notification.json for {key}> -> {json.dumps(answer)}")
        obj = answer["objects"][0]
        self.assertEqual((obj["status"], obj["rows_out"], obj["rows_quarantined"]), ("complete", 1, 1), answer)
        rows = [r for r in ndjson_objects(s3, OUTPUTS["CuratedBucketName"], "transactions/dt=2026-11-22/")
                if r["transaction_id"].startswith("tx-local-")]
        self.assertEqual([r["merchant"] for r in rows], ["Café Zürich"])

    def test_failure_alert_publishes_a_glue_failure(self):
        sqs, inbox = alert_inbox(OUTPUTS["AlertTopicArn"], "runnel-local-alerts")
        answer, _ = sam_invoke("FailureAlertFunction", event("alert-glue-failed.json"))
        log(f"sam local invoke FailureAlertFunction -e events/alert-glue-failed.json -> {json.dumps(answer)}")
        self.assertEqual(answer, {"published": 1, "suppressed": 0, "ignored": 0})
        message = receive_one(sqs, inbox)
        self.assertIn("Glue job runnel-dev-daily-etl FAILED", message)
        self.assertIn(f"Pipeline:  {STACK}", message)


@needs_docker
class SamLocalStartLambda(unittest.TestCase):
    def test_sdk_invoke_through_start_lambda(self):
        port = free_port()
        server = Background("start-lambda", [SAM, "local", "start-lambda", "--host", "127.0.0.1", "--port", str(port),
                                             *sam_options()], "127.0.0.1", port)
        try:
            lam = client("lambda", endpoint_url=f"http://127.0.0.1:{port}")
            sample = event("kinesis-clean.json")
            reply = lam.invoke(FunctionName="KinesisProcessorFunction", Payload=json.dumps(sample).encode())
            answer = json.loads(reply["Payload"].read())
            log(f"sam local start-lambda; SDK invoke KinesisProcessorFunction with events/kinesis-clean.json -> {json.dumps(answer)}")
            self.assertNotIn("FunctionError", reply, server.tail())
            self.assertEqual(answer, {"batchItemFailures": []}, server.tail())
            ours = sequences(sample)
            landed = [d for d in ndjson_objects(client("s3"), OUTPUTS["CuratedBucketName"], "iot/")
                      if d["_id"].split(":")[1] in ours]
            self.assertEqual(len(landed), len(sample["Records"]))
        finally:
            server.stop()


class CargoLambdaWatch(unittest.TestCase):
    """`cargo lambda watch` serves the workspace's functions (built on first invoke) and `cargo
    lambda invoke` sends them a sample event, as the README shows."""

    def test_watch_and_invoke(self):
        port = free_port()
        curated, quarantine = OUTPUTS["CuratedBucketName"], OUTPUTS["QuarantineBucketName"]
        watch = Background("watch", ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port",
                                     str(port), "--env-var", f"OUTPUT_BUCKET={curated}",
                                     "--env-var", f"QUARANTINE_BUCKET={quarantine}",
                                     "--env-var", "OUTPUT_PREFIX=watched"], "127.0.0.1", port)
        try:
            done = run(["cargo", "lambda", "invoke", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
                        "--data-file", "events/kinesis-poison.json", "--output-format", "json", "kinesis-processor"],
                       timeout=900)
            self.assertEqual(done.returncode, 0, done.stderr[-2000:] + watch.tail())
            answer = json.loads(done.stdout[done.stdout.find("{"):])
            log(f"cargo lambda invoke --data-file events/kinesis-poison.json kinesis-processor -> {json.dumps(answer)}")
            self.assertEqual(answer, {"batchItemFailures": []})
            landed = ndjson_objects(client("s3"), curated, "watched/")
            self.assertEqual(len(landed), 2, landed)
        finally:
            watch.stop()


class CargoLambdaDeploy(unittest.TestCase):
    """Each function deployed by `cargo lambda deploy` from its crate's metadata, then invoked
    through the Lambda API. Credentials of the account the metadata names (the emulator maps a
    12-digit access key to that account)."""

    @classmethod
    def setUpClass(cls):
        cls.creds = {"aws_access_key_id": DEV_ACCOUNT, "aws_secret_access_key": "test"}
        metadata = json.loads(run(["cargo", "metadata", "--no-deps", "--format-version", "1"]).stdout)
        cls.deploy = {p["name"]: p["metadata"]["lambda"]["deploy"] for p in metadata["packages"]
                      if (p.get("metadata") or {}).get("lambda", {}).get("deploy")}

    def client(self, name):
        return client(name, **self.creds)

    def cargo_lambda_deploy(self, crate):
        settings = self.deploy[crate]
        done = run(["cargo", "lambda", "deploy", "--manifest-path", f"functions/{crate}/Cargo.toml",
                    "--binary-name", crate, "--endpoint-url", os.environ["AWS_ENDPOINT_URL"],
                    "--iam-role", f"arn:aws:iam::{DEV_ACCOUNT}:role/runnel-local", "--output-format", "json", crate],
                   env={"AWS_ACCESS_KEY_ID": DEV_ACCOUNT, "AWS_SECRET_ACCESS_KEY": "test"})
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        # Progress lines come first on stdout when it is not a terminal; the JSON answer follows.
        start = done.stdout.find("{")
        self.assertGreaterEqual(start, 0, f"no answer from cargo lambda deploy: {done.stdout!r} {done.stderr[-2000:]!r}")
        deployed = json.loads(done.stdout[start:])
        log(f"cargo lambda deploy {crate} -> {deployed['function_arn']}")
        conf = self.client("lambda").get_function_configuration(FunctionName=crate)
        self.assertEqual(conf["MemorySize"], settings["memory"])
        self.assertEqual(conf["Timeout"], settings["timeout"])
        self.assertEqual(conf["TracingConfig"]["Mode"], settings["tracing"].capitalize())
        self.assertEqual(conf["Environment"]["Variables"], settings["env"])
        return settings["env"]

    def invoke(self, crate, payload):
        reply = self.client("lambda").invoke(FunctionName=crate, Payload=json.dumps(payload).encode())
        answer = json.loads(reply["Payload"].read())
        log(f"Lambda Invoke {crate} (deployed by cargo lambda) -> {json.dumps(answer)[:300]}")
        self.assertNotIn("FunctionError", reply, answer)
        return answer

    def bucket(self, name):
        s3 = self.client("s3")
        if name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
            s3.create_bucket(Bucket=name)
        return s3

    def test_kinesis_processor(self):
        env = self.cargo_lambda_deploy("kinesis-processor")
        s3 = self.bucket(env["OUTPUT_BUCKET"])
        sample = event("kinesis-poison.json")
        self.assertEqual(self.invoke("kinesis-processor", sample), {"batchItemFailures": []})
        ours = sequences(sample)
        landed = [d for d in ndjson_objects(s3, env["OUTPUT_BUCKET"], env["OUTPUT_PREFIX"] + "/")
                  if d["_id"].split(":")[1] in ours]
        quarantined = ndjson_objects(s3, env["OUTPUT_BUCKET"], env["QUARANTINE_PREFIX"] + "/")
        self.assertEqual(len(landed), 2)
        self.assertEqual(sorted(q["kind"] for q in quarantined), ["json", "validation"])

    def test_s3_ingest(self):
        env = self.cargo_lambda_deploy("s3-ingest")
        s3 = self.bucket(env["OUTPUT_BUCKET"])
        self.bucket(f"runnel-dev-raw-{DEV_ACCOUNT}")
        key = "transactions/dt=2026-11-23/export.csv.gz"
        body = gzip_csv([f"tx-deploy-{i},acc-{i % 3},{i}.25,EUR,2026-11-23T09:{i:02d}:00Z,Shop {i},,DE" for i in range(10)])
        answer = self.invoke("s3-ingest", s3_event_for(s3, f"runnel-dev-raw-{DEV_ACCOUNT}", key, body))
        obj = answer["objects"][0]
        self.assertEqual((obj["status"], obj["rows_out"], obj["rows_quarantined"]), ("complete", 10, 0), answer)
        rows = ndjson_objects(s3, env["OUTPUT_BUCKET"], env["OUTPUT_PREFIX"] + "/dt=2026-11-23/")
        self.assertEqual(sorted(r["transaction_id"] for r in rows), sorted(f"tx-deploy-{i}" for i in range(10)))

    def test_failure_alert(self):
        env = self.cargo_lambda_deploy("failure-alert")
        self.bucket(env["DEDUPE_BUCKET"])
        topic = self.client("sns").create_topic(Name=env["ALERT_TOPIC_ARN"].rsplit(":", 1)[1])["TopicArn"]
        self.assertEqual(topic, env["ALERT_TOPIC_ARN"])
        sqs, inbox = alert_inbox(topic, "runnel-dev-alerts-inbox", **self.creds)
        answer = self.invoke("failure-alert", event("alert-glue-timeout.json"))
        self.assertEqual(answer, {"published": 1, "suppressed": 0, "ignored": 0})
        self.assertIn("TIMEOUT", receive_one(sqs, inbox))


if __name__ == "__main__":
    unittest.main()
