"""What template.yaml must keep, checked by scripts/check_template.

cfn-lint checks that the template is valid and checkov that it follows common
rules; neither knows this service. These are its own promises (issue 12 §7,
issue 9 §3, the README's security notes), so that an edit that breaks one
fails CI instead of a review. Run with the .venv's Python (it parses the
template with the SAM translator's YAML loader, which knows !Ref and friends):

    .venv/bin/python scripts/template_invariants.py template.yaml
"""

import sys

from samtranslator.yaml_helper import yaml_parse

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def statements(function):
    for policy in function["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            for statement in policy["Statement"]:
                # A conditional statement: {"Fn::If": [cond, statement, NoValue]}
                if "Fn::If" in statement:
                    statement = statement["Fn::If"][1]
                yield statement


def as_list(value):
    return value if isinstance(value, list) else [value]


def main(path):
    template = yaml_parse(open(path).read())
    resources = template["Resources"]
    global_env = template["Globals"]["Function"]["Environment"]["Variables"]
    sync, read = resources["SyncFunction"], resources["ReadFunction"]
    sync_env = sync["Properties"]["Environment"]["Variables"]
    read_env = read["Properties"].get("Environment", {}).get("Variables", {})

    # The key is never in the template: only the secret's ARN, to the sync function.
    for name, env in (("Globals", global_env), ("SyncFunction", sync_env), ("ReadFunction", read_env)):
        check("COMPOSIO_API_KEY" not in env, f"{name}: COMPOSIO_API_KEY must not be an environment variable")
        for legacy in ("LOG_FORMAT", "RUST_LOG"):
            check(legacy not in env, f"{name}: {legacy} is superseded by LoggingConfig")
    check(sync_env.get("COMPOSIO_API_KEY_SECRET") == {"Ref": "ComposioApiKeySecretArn"},
          "SyncFunction: COMPOSIO_API_KEY_SECRET must be the secret's ARN parameter")
    check("COMPOSIO_API_KEY_SECRET" not in global_env and "COMPOSIO_API_KEY_SECRET" not in read_env,
          "only SyncFunction may know the secret")
    check(global_env.get("METRICS_NAMESPACE") == {"Ref": "MetricsNamespace"},
          "both functions need METRICS_NAMESPACE")

    # Least privilege: no wildcard resource, the secret for the sync function only.
    for name, function in (("SyncFunction", sync), ("ReadFunction", read)):
        for statement in statements(function):
            for resource in as_list(statement["Resource"]):
                check(resource != "*", f"{name}: statement {statement.get('Sid')} allows Resource '*'")
            actions = as_list(statement["Action"])
            if any(action.startswith("secretsmanager:") for action in actions):
                check(name == "SyncFunction" and actions == ["secretsmanager:GetSecretValue"]
                      and statement["Resource"] in ({"Ref": "ComposioApiKeySecretArn"},
                                                    {"Ref": "ChangeWebhookSecretArn"}),
                      f"{name}: secretsmanager access must be GetSecretValue on its own secrets, sync only")
            if any(action.startswith("events:") for action in actions):
                check(name == "SyncFunction" and actions == ["events:PutEvents"]
                      and "event-bus/${ChangeEventBusName}" in str(statement["Resource"]),
                      f"{name}: events access must be PutEvents on the one bus, sync only")
            if any(action.startswith("s3:") and action != "s3:ListBucket" for action in actions):
                check("${CachePrefix}*" in str(statement["Resource"]),
                      f"{name}: object access must stay under the cache prefix")
    check(any(s.get("Sid") == "ComposioApiKeySecretRead" for s in statements(sync)),
          "SyncFunction: no read access to the secret")
    check(any(s.get("Sid") == "ChangeEventsPut" for s in statements(sync)),
          "SyncFunction: may not put its change events")
    for name, env in (("Globals", global_env), ("ReadFunction", read_env)):
        check(not any(k.startswith("CHANGE_") for k in env), f"{name}: notifications are the sync function's alone")
    check("CHANGE_WEBHOOK_SECRET" not in sync_env, "SyncFunction: the webhook secret itself must not be in the environment")

    # Concurrency, logging, architecture.
    check(sync["Properties"].get("ReservedConcurrentExecutions") == 1,
          "SyncFunction: reserved concurrency must be 1")
    check("ReservedConcurrentExecutions" in read["Properties"],
          "ReadFunction: its cap (ReadReservedConcurrency) is gone")
    for name, function, group in (("SyncFunction", sync, "SyncFunctionLogGroup"),
                                  ("ReadFunction", read, "ReadFunctionLogGroup")):
        logging = function["Properties"].get("LoggingConfig", {})
        check(logging.get("LogFormat") == "JSON", f"{name}: LoggingConfig.LogFormat must be JSON")
        check(logging.get("LogGroup") == {"Ref": group}, f"{name}: must log to {group}")
        check("RetentionInDays" in resources[group]["Properties"], f"{group}: needs a retention")
    check(template["Globals"]["Function"]["Architectures"] == [{"Ref": "Architecture"}],
          "both functions must follow the Architecture parameter")
    check("WARN" not in template["Parameters"]["ApplicationLogLevel"]["AllowedValues"],
          "ApplicationLogLevel WARN and above would drop the EMF metric records")

    # The bucket stays private, versioned, encrypted and TLS only.
    bucket = resources["CacheBucket"]["Properties"]
    check(all(bucket["PublicAccessBlockConfiguration"].values()), "CacheBucket: public access must be blocked")
    check(bucket["VersioningConfiguration"]["Status"] == "Enabled", "CacheBucket: versioning")
    check("BucketEncryption" in bucket, "CacheBucket: encryption")
    check(resources["CacheBucket"].get("DeletionPolicy") == "Retain", "CacheBucket: must be retained")
    deny = resources["CacheBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    check(any(s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
              for s in deny), "CacheBucketPolicy: must deny plain HTTP")

    # The sync route needs SigV4; failures have somewhere to go, encrypted.
    events = sync["Properties"]["Events"]
    check(events["SyncApi"]["Properties"]["Auth"]["Authorizer"] == "AWS_IAM", "POST /sync must be IAM-authorised")
    check(sync["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"]
          == {"Fn::GetAtt": ["SyncFailureQueue", "Arn"]}, "SyncFunction: failure destination")
    queue = resources["SyncFailureQueue"]["Properties"]
    check("KmsMasterKeyId" in queue or queue.get("SqsManagedSseEnabled"), "SyncFailureQueue: encryption")

    # Every alarm notifies the optional topic, both ways.
    alarms = {name: r for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    check(len(alarms) >= 5, "alarms are missing")
    topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        check(props.get("AlarmActions") == topic and props.get("OKActions") == topic,
              f"{name}: AlarmActions/OKActions must follow AlarmTopicArn")
        if not str(props.get("Namespace", "")).startswith("AWS/"):
            check(props.get("Namespace") == {"Ref": "MetricsNamespace"}, f"{name}: custom metrics live in MetricsNamespace")
    overdue = alarms["SyncOverdueAlarm"]["Properties"]
    check(overdue["Period"] == 120 and overdue["EvaluationPeriods"] == {"Ref": "SyncScheduleMinutes"}
          and overdue["TreatMissingData"] == "breaching",
          "SyncOverdueAlarm: must span twice the schedule (N periods of 2 minutes), missing data breaching")

    # CloudFront never caches nor forwards the sync route's POST.
    distribution = resources["ReadDistribution"]["Properties"]["DistributionConfig"]
    check("POST" not in distribution["DefaultCacheBehavior"]["AllowedMethods"],
          "ReadDistribution: the default behaviour must not allow POST")
    sync_paths = [b for b in distribution["CacheBehaviors"] if "/sync" in b["PathPattern"]]
    check(len(sync_paths) == 1 and "POST" not in sync_paths[0]["AllowedMethods"]
          and sync_paths[0]["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
          "ReadDistribution: the sync paths need their own uncached, GET/HEAD-only behaviour")

    for failure in failures:
        print(f"  FAILED {failure}")
    print(f"template invariants: {'all hold' if not failures else f'{len(failures)} broken'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml"))
