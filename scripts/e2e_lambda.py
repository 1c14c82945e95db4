#!/usr/bin/env python3
"""End to end through cargo-lambda: the real `composio-sync` and `composio-read`
binaries under `cargo lambda watch`, against the project's Composio emulator
and a local S3 server (moto), all on 127.0.0.1.

Invokes every fixture of events/ with `cargo lambda invoke`, checks each
answer and the objects in the bucket, then takes the emulator away and checks
that a scheduled sync fails its invocation. Every wait is bounded; every
process started here is stopped on exit.

Usage: scripts/e2e_lambda.py   (needs cargo-lambda and moto on PATH: .ci/run installs them)
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WATCH_LOG = os.path.join(ROOT, "target", "e2e-watch.log")
EVENTS = os.path.join(ROOT, "events")
BUCKET = "composio-cache-e2e"
KEY = "sk-e2e-LEAKCHECK-55aa0f"
answers = []
PREFIX = "composio-schemas/"
procs = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    sys.exit(f"e2e: {what} did not listen on {port} within {timeout}s")


def start(cmd, env=None, **kw):
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, **kw)
    procs.append(p)
    return p


def stop_all():
    for p in reversed(procs):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=10)
            except Exception:
                os.killpg(p.pid, signal.SIGKILL)


def invoke(function, event, port, expect_ok=True):
    cmd = ["cargo", "lambda", "invoke", function, "--invoke-address", "127.0.0.1",
           "--invoke-port", str(port), "--data-file", os.path.join(EVENTS, event),
           "--output-format", "json"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    answers.append(r.stdout + r.stderr)
    if expect_ok and r.returncode != 0:
        sys.exit(f"e2e: invoke {function} {event} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    if not expect_ok:
        return r
    return json.loads(r.stdout)


def http_body(answer):
    return answer["statusCode"], json.loads(answer["body"])


def check(cond, message):
    if not cond:
        sys.exit(f"e2e: FAILED: {message}")
    print(f"e2e: ok: {message}")


def main():
    subprocess.run(["cargo", "build", "--bins"], cwd=ROOT, check=True, timeout=3600)
    cache_bin = os.path.join(ROOT, "target", "debug", "composio-cache")

    emu = start([cache_bin, "emulator", "--addr", "127.0.0.1:0", "--page-cap", "100", "--api-key", KEY],
                stdout=subprocess.PIPE, text=True)
    emulator_url = emu.stdout.readline().strip()
    check(emulator_url.startswith("http://127.0.0.1:"), f"emulator at {emulator_url}")

    s3_port = free_port()
    start(["moto_server", "-H", "127.0.0.1", "-p", str(s3_port)],
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(s3_port, "moto_server", 60)
    s3_url = f"http://127.0.0.1:{s3_port}"

    import boto3  # moto brings boto3
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket=BUCKET)
    # The key lives in Secrets Manager, as the template deploys it.
    secrets = boto3.client("secretsmanager", endpoint_url=s3_url, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
    secrets.create_secret(Name="composio-e2e", SecretString=json.dumps({"COMPOSIO_API_KEY": KEY}))
    # Change notifications as deployed: events on the default bus (a rule
    # routes them to a queue read back here), a signed webhook whose secret
    # is in Secrets Manager, verified by the standardwebhooks package.
    sqs = boto3.client("sqs", endpoint_url=s3_url, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    events = boto3.client("events", endpoint_url=s3_url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    queue = sqs.create_queue(QueueName="changes")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="changes", EventPattern=json.dumps(
        {"source": ["composio.schema-cache"], "detail-type": ["Composio Schemas Changed"]}))
    events.put_targets(Rule="changes", Targets=[{"Id": "queue", "Arn": queue_arn}])
    webhook_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    secrets.create_secret(Name="webhook-e2e", SecretString=webhook_secret)
    hook_log = os.path.join(ROOT, "target", "e2e-webhooks.jsonl")
    if os.path.exists(hook_log):
        os.remove(hook_log)
    receiver = start([sys.executable, os.path.join(ROOT, "tests", "support", "webhook_receiver.py"),
                      webhook_secret, hook_log], stdout=subprocess.PIPE, text=True)
    hook_port = int(receiver.stdout.readline().split()[1])

    env = dict(os.environ,
               COMPOSIO_API_KEY_SECRET="composio-e2e", COMPOSIO_BASE_URL=emulator_url,
               COMPOSIO_MAX_RETRIES="1", COMPOSIO_RETRY_BUDGET_MS="500",
               CACHE_BUCKET=BUCKET, CACHE_PREFIX=PREFIX, CACHE_S3_FORCE_PATH_STYLE="true",
               AWS_ENDPOINT_URL=s3_url, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_REGION="us-east-1", READ_META_TTL_MS="0", RUST_LOG="info",
               CHANGE_EVENT_BUS="default", CHANGE_WEBHOOK_SECRET_ARN="webhook-e2e",
               CHANGE_WEBHOOK_URLS=f"http://127.0.0.1:{hook_port}/ok")
    env.pop("COMPOSIO_API_KEY", None)
    port = free_port()
    start(["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
           "--ignore-changes"], env=env,
          stdout=open(WATCH_LOG, "w"), stderr=subprocess.STDOUT)
    wait_port(port, "cargo lambda watch", 600)

    # The API Gateway POST (HTTP API v2, IAM-signed in production).
    status, report = http_body(invoke("composio-sync", "sync-apigw-v2.json", port))
    check(status == 200 and report["success"] is True, f"POST /sync via API Gateway v2: {status}")
    check((report["toolkits"], report["tools"]) == (7, 885), f"synced 7 toolkits, 885 tools: {report['toolkits']}, {report['tools']}, failed {report['failed']}")
    check(isinstance(report["durationMs"], int) and report["failed"] == [], "report has durationMs and no failures")
    first_sync = report["syncId"]
    check(report["notifications"] == {"delivered": 2, "failed": [], "pending": 0},
          f"the first sync's change set was announced twice: {report.get('notifications')}")
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    event = json.loads(got[0]["Body"]) if got else {}
    check(len(got) == 1 and event["source"] == "composio.schema-cache" and event["detail"]["syncId"] == first_sync
          and event["detail"]["counts"]["added"] == 885, "an EventBridge event reached the rule's queue")
    hooks = [json.loads(line) for line in open(hook_log)]
    check(len(hooks) == 1 and hooks[0]["verified"] and hooks[0]["id"] == f"msg_{first_sync}",
          "a webhook signed with the secret from Secrets Manager, verified by standardwebhooks")

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    changes = [k for k in keys if k.startswith(PREFIX + "_changes/")]
    snapshots = [k for k in keys if k.startswith(PREFIX + "_objects/")]
    keys = [k for k in keys if k not in changes and k not in snapshots]
    want = sorted(PREFIX + n for n in ["_meta.json", "_last_run.json", "_notifications.json",
                                       "browseai.json", "browser_tool.json",
                                       "firecrawl.json", "github.json", "googletasks.json",
                                       "linkedin.json", "perplexityai.json"])
    check(keys == want, f"bucket holds {len(keys)} objects in the reference layout")
    check(len(changes) == 1 and changes[0].endswith(report["syncId"] + ".json"), "and the first sync's change record")
    check(len(snapshots) == 7, f"and one immutable snapshot per toolkit under _objects/: {len(snapshots)}")
    meta = json.loads(s3.get_object(Bucket=BUCKET, Key=PREFIX + "_meta.json")["Body"].read())
    check(meta["toolkitCount"] == 7 and meta["totalToolCount"] == 885, "meta counts")
    github = json.loads(s3.get_object(Bucket=BUCKET, Key=PREFIX + "github.json")["Body"].read())
    check(github["toolCount"] == 831 == len(github["tools"]), "github holds all 831 tools (9 pages at a cap of 100)")
    check(s3.head_object(Bucket=BUCKET, Key=PREFIX + "github.json")["ContentType"] == "application/json", "objects are application/json")

    # An HTTP API named stage, REST API v1 (with a stage) and the scheduled event.
    status, report = http_body(invoke("composio-sync", "sync-apigw-v2-stage.json", port))
    check(status == 200 and report["success"] is True, "POST /sync via an HTTP API named stage")
    status, report = http_body(invoke("composio-sync", "sync-apigw-v1.json", port))
    check(status == 200 and report["mode"] == "incremental" and report["fetched"] == 0, "POST /sync via REST API v1: incremental, nothing to fetch")
    report = invoke("composio-sync", "sync-scheduled.json", port)
    check(report["success"] is True and report["toolkits"] == 7, "EventBridge scheduled event publishes a sync")
    report = invoke("composio-sync", "sync-direct-full.json", port)
    check(report["mode"] == "full" and report["fetched"] == 7 and report["written"] == 0, "direct {\"full\": true}: refetched all, wrote nothing unchanged")
    meta2 = json.loads(s3.get_object(Bucket=BUCKET, Key=PREFIX + "_meta.json")["Body"].read())
    check(meta2["syncId"] != meta["syncId"], "each sync published a new meta")

    # Every read route through the read function.
    status, root = http_body(invoke("composio-read", "read-root.json", port))
    check(status == 200 and len(root["toolkits"]) == 7, "GET / lists 7 toolkits")
    status, lst = http_body(invoke("composio-read", "read-toolkits.json", port))
    gh = [t for t in lst["toolkits"] if t["slug"] == "github"][0]
    check(status == 200 and len(gh["tools"]) == 831, "GET /toolkits lists github's 831 tools")
    status, tk = http_body(invoke("composio-read", "read-toolkit.json", port))
    check(status == 200 and tk["slug"] == "linkedin" and tk["toolCount"] == 4, "GET /toolkits/linkedin")
    status, tk1 = http_body(invoke("composio-read", "read-toolkit-v1.json", port))
    check(status == 200 and tk1 == tk, "GET /toolkits/linkedin via REST API v1 (stage in the path)")
    status, tool = http_body(invoke("composio-read", "read-tool.json", port))
    check(status == 200 and tool["slug"] == "LINKEDIN_GET_MY_INFO" and "inputParameters" in tool, "GET /toolkits/linkedin/LINKEDIN_GET_MY_INFO")
    status, st = http_body(invoke("composio-read", "read-status.json", port))
    check(status == 200 and st["meta"]["toolkitCount"] == 7 and st["lastRun"]["success"], "GET /sync/status")
    status, doc = http_body(invoke("composio-read", "read-openapi.json", port))
    check(status == 200 and doc["openapi"].startswith("3."), "GET /openapi.json")
    status, err = http_body(invoke("composio-read", "read-unknown-toolkit.json", port))
    check(status == 404 and "error" in err, "unknown toolkit: 404 {error}")
    status, err = http_body(invoke("composio-read", "read-bad-slug.json", port))
    check(status == 400 and "error" in err, "traversal slug: 400 {error}")
    status, err = http_body(invoke("composio-read", "sync-apigw-v2.json", port))
    check(status == 503 and "COMPOSIO_API_KEY" in err["error"], "the read function has no key: POST /sync is a 503 naming it")
    status, staged = http_body(invoke("composio-read", "read-toolkit-v2-stage.json", port))
    check(status == 200 and staged == tk, "GET /toolkits/linkedin via an HTTP API named stage")
    answer = invoke("composio-read", "read-toolkit-gzip.json", port)
    import base64, gzip
    check(answer["isBase64Encoded"] is True and answer["headers"].get("content-encoding") == "gzip",
          "Accept-Encoding: gzip through Lambda is base64 with content-encoding gzip")
    check(json.loads(gzip.decompress(base64.b64decode(answer["body"]))) == tk, "the gzip answer unpacks to the toolkit")
    check(answer["headers"].get("etag", "").endswith('-gzip"') and "max-age" in answer["headers"].get("cache-control", ""),
          "answers carry a strong ETag and Cache-Control")

    # Composio goes away: the scheduled invocation must fail (so EventBridge retries).
    os.killpg(emu.pid, signal.SIGTERM)
    emu.wait(timeout=10)
    r = invoke("composio-sync", "sync-scheduled.json", port, expect_ok=False)
    check(r.returncode != 0 and "SyncFailed" in (r.stdout + r.stderr), "a failed scheduled sync fails the invocation")
    meta3 = json.loads(s3.get_object(Bucket=BUCKET, Key=PREFIX + "_meta.json")["Body"].read())
    check(meta3 == meta2, "the failed sync left the published meta untouched")
    logs = open(WATCH_LOG).read()
    check(len(logs) > 1000 and "sync" in logs, f"the functions' logs were captured ({len(logs)} bytes)")
    emf = [json.loads(line[line.index("{"):]) for line in logs.splitlines() if '"_aws"' in line]
    synced = [r for r in emf if "ToolkitsSynced" in r]
    check(synced and synced[0]["ToolkitsSynced"] == 7 and synced[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ComposioSchemaCache",
          f"the sync function emitted EMF metrics ({len(synced)} sync records)")
    check(all(KEY not in a for a in answers) and KEY not in logs, "the Composio key is in no log line and no answer")
    hooks = [json.loads(line) for line in open(hook_log)]
    check(len(hooks) == 1 and KEY not in json.dumps(hooks) and webhook_secret[6:] not in json.dumps(hooks),
          "later syncs changed nothing and sent nothing; no key or secret in a webhook")
    check(webhook_secret[6:] not in logs and all(webhook_secret[6:] not in a for a in answers),
          "the webhook secret is in no log line and no answer")
    print("e2e: all cargo-lambda checks passed")


if __name__ == "__main__":
    try:
        main()
    finally:
        stop_all()
