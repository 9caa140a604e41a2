#!/usr/bin/env python3
"""Regenerates the deployer's IAM policy from what CloudFormation itself needs.

CloudFormation's resource provider schemas list, per resource type, the IAM permissions its
create/read/update/delete handlers call (`handlers.*.permissions`). cfn-lint ships those schemas.
This script reads the template's resource types, takes those permissions from the installed
cfn-lint, adds what `sam deploy` needs (change sets, its managed artifact bucket), and writes:

  tests/fixtures/cfn-handler-permissions.json  the permissions per type (the Rust test checks the
                                               policy covers them)
  deployer-policy.json                         the policy to attach to whoever deploys

Run from infra/aws with the CI venv's python: `python tools/deployer_policy.py`.
"""
import json
import pathlib
import re

import cfnlint
from importlib.metadata import version

HERE = pathlib.Path(__file__).resolve().parent.parent
SCHEMAS = pathlib.Path(cfnlint.__file__).parent / "data" / "schemas"
# SAM's transform turns AWS::Serverless::Function into AWS::Lambda::Function and
# AWS::Serverless::LayerVersion into AWS::Lambda::LayerVersion.
SAM_TYPES = {
    "AWS::Serverless::Function": "AWS::Lambda::Function",
    "AWS::Serverless::LayerVersion": "AWS::Lambda::LayerVersion",
}
ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")

SAM_DEPLOY = {
    "Sid": "SamDeployChangeSets",
    "Effect": "Allow",
    "Action": [
        "cloudformation:CreateChangeSet",
        "cloudformation:CreateStack",
        "cloudformation:DeleteChangeSet",
        "cloudformation:DeleteStack",
        "cloudformation:DescribeChangeSet",
        "cloudformation:DescribeStackEvents",
        "cloudformation:DescribeStackResource",
        "cloudformation:DescribeStackResources",
        "cloudformation:DescribeStacks",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:GetTemplate",
        "cloudformation:GetTemplateSummary",
        "cloudformation:ListStackResources",
        "cloudformation:UpdateStack",
        "cloudformation:ValidateTemplate",
    ],
    "Resource": "*",
}
SAM_BUCKET = {
    "Sid": "SamManagedArtifactBucket",
    "Effect": "Allow",
    "Action": [
        "s3:CreateBucket",
        "s3:DeleteObject",
        "s3:GetBucketLocation",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutBucketPolicy",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutBucketTagging",
        "s3:PutBucketVersioning",
        "s3:PutEncryptionConfiguration",
        "s3:PutObject",
    ],
    "Resource": [
        "arn:aws:s3:::aws-sam-cli-managed-default-*",
        "arn:aws:s3:::aws-sam-cli-managed-default-*/*",
    ],
}


def main():
    template = (HERE / "template.yaml").read_text()
    types = sorted(
        {SAM_TYPES.get(t, t) for t in re.findall(r"Type: (AWS::\w+::\w+)", template)}
    )
    providers = json.loads((SCHEMAS / "providers" / "us-east-1.json").read_text())
    per_type = {}
    for kind in types:
        schema = json.loads((SCHEMAS / "resources" / f"{providers[kind]}.json").read_text())
        per_type[kind] = {
            handler: sorted(set(spec.get("permissions", [])))
            for handler, spec in schema.get("handlers", {}).items()
            if handler in ("create", "read", "update", "delete")
        }
    fixture = {
        "source": f"CloudFormation resource provider schemas (handlers.*.permissions), as shipped in cfn-lint {version('cfn-lint')} (cfnlint/data/schemas, us-east-1)",
        "types": per_type,
    }
    (HERE / "tests" / "fixtures" / "cfn-handler-permissions.json").write_text(
        json.dumps(fixture, indent=1, sort_keys=True) + "\n"
    )
    by_service = {}
    for handlers in per_type.values():
        for permissions in handlers.values():
            for action in permissions:
                if ACTION.match(action):
                    by_service.setdefault(action.split(":")[0], set()).add(action)
    statements = [SAM_DEPLOY, SAM_BUCKET] + [
        {
            "Sid": "Resources" + "".join(p.capitalize() for p in re.split(r"[^a-z0-9]", service)),
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": "*",
        }
        for service, actions in sorted(by_service.items())
    ]
    policy = {"Version": "2012-10-17", "Statement": statements}
    (HERE / "deployer-policy.json").write_text(json.dumps(policy, indent=2) + "\n")


if __name__ == "__main__":
    main()
