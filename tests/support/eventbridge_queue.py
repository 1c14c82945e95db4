"""EventBridge → SQS on a moto server, for the Rust tests, through boto3
(moto's own dependency), so reading the events back needs no Rust SQS client.

    eventbridge_queue.py setup ENDPOINT SOURCE   prints the queue URL: a rule on
                                                 the default bus routes events of
                                                 SOURCE to a new queue
    eventbridge_queue.py read ENDPOINT QUEUE_URL prints the messages' bodies as a
                                                 JSON list (waits up to 1 s)
"""
import json
import sys
import uuid

import boto3

command, endpoint = sys.argv[1], sys.argv[2]
kwargs = dict(endpoint_url=endpoint, region_name="us-east-1",
              aws_access_key_id="test", aws_secret_access_key="test")
sqs = boto3.client("sqs", **kwargs)
if command == "setup":
    source = sys.argv[3]
    events = boto3.client("events", **kwargs)
    name = f"changes-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    print(url)
elif command == "read":
    url = sys.argv[3]
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = got.get("Messages", [])
        if not messages:
            break
        for m in messages:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    print(json.dumps(bodies))
