"""What makes the Auto Scaling group serve: the boot script, the metrics its policies track,
an internal load balancer, and a launch lifecycle hook.

An instance boots the Deep Learning AMI (NVIDIA driver, Docker with the NVIDIA
runtime, the AWS CLI and the CloudWatch agent preinstalled), then:

1. starts the CloudWatch agent publishing `scaleplan/GPUUtilization` per group
   (the `nvidia_gpu` plugin's `utilization_gpu`, renamed, with the
   `AutoScalingGroupName` dimension the alarms and target tracking select on);
2. runs the vLLM server in Docker on the serving port, the model-registry token
   read from an SSM SecureString the stack writes;
3. publishes `QueueLengthPerReplica`, `RequestsPerReplica` and `RequestCount`
   (requests completed since the last reading; CloudWatch's Sum over the group's
   instances is the group's demand, which `planner retrain --source cloudwatch`
   reads) from the server's own `/metrics` every minute (a systemd timer), so every
   metric in `asg.CLOUDWATCH_METRICS` exists;
4. completes the launch lifecycle action once `/health` answers, so the group
   counts an instance only when it serves (and, in a warm pool, once the image
   and weights are on disk: the instance then stops warmed, and a later start
   skips the download); a systemd unit repeats that at every later boot, since
   a warm-pool instance passes the launch hook again when it starts serving.

The internal Network Load Balancer spreads requests over the healthy instances;
the group replaces instances its target group finds unhealthy.
"""

from __future__ import annotations

import base64
import json
import shlex
from typing import Any

import pulumi
import pulumi_aws as aws

#: The launch hook's name (the boot script completes it).
LAUNCH_HOOK = "scaleplan-model-ready"
#: Longest a boot may take before the group abandons the instance: image pull and
#: weight download of an 8B model take minutes; 30 leaves room for a cold region.
LAUNCH_TIMEOUT_S = 1800


def cloudwatch_agent_config(namespace: str) -> dict[str, Any]:
    """CloudWatch agent config: GPU utilisation per Auto Scaling group, every 60 s."""
    return {
        "agent": {"metrics_collection_interval": 60},
        "metrics": {
            "namespace": namespace,
            "append_dimensions": {"AutoScalingGroupName": "${aws:AutoScalingGroupName}"},
            "aggregation_dimensions": [["AutoScalingGroupName"]],
            "metrics_collected": {
                "nvidia_gpu": {
                    "measurement": [
                        {"name": "utilization_gpu", "rename": "GPUUtilization", "unit": "Percent"}
                    ]
                }
            },
        },
    }


#: Publishes the server's queue length and request rate per minute (run by a timer).
_PUBLISH = """#!/bin/bash
# Queue length and request rate of this replica, from vLLM's Prometheus series.
set -euo pipefail
metrics=$(curl -sf http://127.0.0.1:{port}/metrics) || exit 0
waiting=$(echo "$metrics" | awk '/^vllm:num_requests_waiting/ {{s+=$2}} END {{print s+0}}')
done_now=$(echo "$metrics" | awk '/^vllm:request_success_total/ {{s+=$2}} END {{print s+0}}')
state=/var/lib/scaleplan/requests-total
done_before=$(cat "$state" 2>/dev/null || echo "$done_now")
echo "$done_now" > "$state"
count=$(awk -v a="$done_now" -v b="$done_before" 'BEGIN {{c=a-b; print (c<0?0:c)}}')
rate=$(awk -v c="$count" 'BEGIN {{print c/60}}')
dims="Dimensions=[{{Name=AutoScalingGroupName,Value=$(cat /var/lib/scaleplan/asg)}}]"
aws cloudwatch put-metric-data --region {region} --namespace {namespace} --metric-data \\
  "MetricName=QueueLengthPerReplica,Value=$waiting,$dims" \\
  "MetricName=RequestsPerReplica,Value=$rate,$dims" \\
  "MetricName=RequestCount,Value=$count,Unit=Count,$dims"
"""


def user_data(
    *,
    image: str,
    model_id: str,
    port: int,
    region: str,
    token_parameter: str,
    namespace: str = "scaleplan",
    max_model_len: int | None = None,
) -> str:
    """The instance's boot script (cloud-init runs it once per instance)."""
    server_args = ["--model", model_id, "--port", str(port)]
    if max_model_len is not None:
        server_args += ["--max-model-len", str(max_model_len)]
    agent = json.dumps(cloudwatch_agent_config(namespace))
    publish = _PUBLISH.format(port=port, region=region, namespace=namespace)
    q = shlex.quote
    return f"""#!/bin/bash
set -euo pipefail
mkdir -p /var/lib/scaleplan /models
TOKEN=$(curl -sX PUT http://169.254.169.254/latest/api/token \\
  -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
imds() {{ curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "http://169.254.169.254/latest/$1"; }}
INSTANCE=$(imds meta-data/instance-id)
ASG=$(aws autoscaling describe-auto-scaling-instances --region {region} \\
  --instance-ids "$INSTANCE" --query 'AutoScalingInstances[0].AutoScalingGroupName' \\
  --output text)
echo "$ASG" > /var/lib/scaleplan/asg
echo "$INSTANCE" > /var/lib/scaleplan/instance
complete() {{
  aws autoscaling complete-lifecycle-action --region {region} --lifecycle-action-result "$1" \\
    --lifecycle-hook-name {LAUNCH_HOOK} --auto-scaling-group-name "$ASG" \\
    --instance-id "$INSTANCE" || true
}}
trap 'complete ABANDON' ERR

# 1. GPU utilisation per group.
cat > /opt/aws/amazon-cloudwatch-agent/etc/scaleplan.json <<'AGENT'
{agent}
AGENT
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 \\
  -s -c file:/opt/aws/amazon-cloudwatch-agent/etc/scaleplan.json

# 2. The model server (weights cached on the instance's volume).
HF_TOKEN=$(aws ssm get-parameter --region {region} --with-decryption \\
  --name {q(token_parameter)} --query Parameter.Value --output text)
docker pull {q(image)}
docker rm -f vllm 2>/dev/null || true
docker run -d --name vllm --restart always --gpus all --ipc host -p {port}:{port} \\
  -e HF_TOKEN="$HF_TOKEN" -v /models:/root/.cache/huggingface {q(image)} \\
  {" ".join(q(a) for a in server_args)}
until curl -sf http://127.0.0.1:{port}/health >/dev/null; do sleep 10; done

# 3. Queue length and request rate per replica, every minute.
cat > /usr/local/bin/scaleplan-publish <<'PUBLISH'
{publish}PUBLISH
chmod +x /usr/local/bin/scaleplan-publish
cat > /etc/systemd/system/scaleplan-publish.service <<'UNIT'
[Service]
Type=oneshot
ExecStart=/usr/local/bin/scaleplan-publish
UNIT
cat > /etc/systemd/system/scaleplan-publish.timer <<'UNIT'
[Timer]
OnBootSec=60
OnUnitActiveSec=60
[Install]
WantedBy=timers.target
UNIT
systemctl daemon-reload
systemctl enable --now scaleplan-publish.timer

# 4. Serving (or warmed, in a warm pool): the group may count this instance. The
# same check runs at every later boot (a warm-pool instance starting to serve goes
# through the launch hook again; cloud-init does not rerun this script, Docker
# restarts the server).
cat > /usr/local/bin/scaleplan-ready <<'READY'
#!/bin/bash
until curl -sf http://127.0.0.1:{port}/health >/dev/null; do sleep 10; done
aws autoscaling complete-lifecycle-action --region {region} --lifecycle-action-result CONTINUE \
  --lifecycle-hook-name {LAUNCH_HOOK} --auto-scaling-group-name "$(cat /var/lib/scaleplan/asg)" \
  --instance-id "$(cat /var/lib/scaleplan/instance)" || true
READY
chmod +x /usr/local/bin/scaleplan-ready
cat > /etc/systemd/system/scaleplan-ready.service <<'UNIT'
[Unit]
After=docker.service network-online.target
[Service]
Type=oneshot
ExecStart=/usr/local/bin/scaleplan-ready
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable scaleplan-ready.service
complete CONTINUE
"""


def encoded(script: str) -> str:
    """User data as launch templates take it (base64)."""
    return base64.b64encode(script.encode()).decode()


def instance_policy(token_parameter_arn: str, group_name_prefix: str) -> dict[str, Any]:
    """What the boot script calls beyond the managed policies: the token and the launch hook."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadModelToken",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter"],
                "Resource": token_parameter_arn,
            },
            {
                "Sid": "FindOwnGroup",
                "Effect": "Allow",
                "Action": ["autoscaling:DescribeAutoScalingInstances"],
                "Resource": "*",
            },
            {
                "Sid": "CompleteLaunch",
                "Effect": "Allow",
                "Action": ["autoscaling:CompleteLifecycleAction"],
                "Resource": (
                    "arn:aws:autoscaling:*:*:autoScalingGroup:*:"
                    f"autoScalingGroupName/{group_name_prefix}*"
                ),
            },
        ],
    }


def internal_load_balancer(
    name: str,
    *,
    vpc_id: pulumi.Input[str],
    subnet_ids: pulumi.Input[Any],
    port: int,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> aws.lb.TargetGroup:
    """An internal NLB on `port` and its target group (health: the server's `/health`)."""
    opts = pulumi.ResourceOptions(parent=parent)
    nlb = aws.lb.LoadBalancer(
        f"{name}-nlb",
        internal=True,
        load_balancer_type="network",
        subnets=subnet_ids,
        enable_cross_zone_load_balancing=True,
        tags=tags,
        opts=opts,
    )
    target_group = aws.lb.TargetGroup(
        f"{name}-tg",
        port=port,
        protocol="TCP",
        target_type="instance",
        vpc_id=vpc_id,
        deregistration_delay=60,
        health_check={
            "protocol": "HTTP",
            "path": "/health",
            "port": str(port),
            "interval": 30,
            "healthy_threshold": 2,
            "unhealthy_threshold": 3,
        },
        tags=tags,
        opts=opts,
    )
    aws.lb.Listener(
        f"{name}-listener",
        load_balancer_arn=nlb.arn,
        port=port,
        protocol="TCP",
        default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
        tags=tags,
        opts=opts,
    )
    return target_group
