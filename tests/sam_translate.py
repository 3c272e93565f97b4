"""Translates a SAM template to plain CloudFormation with SAM's own translator
(aws-sam-translator, pinned in tests/requirements.txt): the code `sam deploy` and
CloudFormation's AWS::Serverless transform run. Prints the translated template as JSON; on any
error prints SAM's messages and exits 1.

    tests/bin/sam-translate infra/template.yaml [Name=Value ...]

Function code is pointed at an S3 object first, as `sam package` does before a deploy: the
translator refuses local paths. Managed policy names resolve from the map bundled with the
translator, so no AWS account is asked.
"""

import json
import sys

import boto3
from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

ARTIFACT_BUCKET = "orderflow-artifacts"


def packaged(template):
    """What `sam package` hands to CloudFormation: every local CodeUri replaced by an S3 URI."""
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.setdefault("Properties", {})
        code_uri = properties.get("CodeUri")
        if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
            binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary", logical_id)
            properties["CodeUri"] = f"s3://{ARTIFACT_BUCKET}/{binary}.zip"
    return template


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as source:
        template = packaged(yaml_parse(source.read()))
    parameters = dict(arg.split("=", 1) for arg in argv[2:])
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="translate", aws_secret_access_key="translate")
    translator = Translator(None, Parser(), boto_session=session)
    try:
        translated = translator.translate(
            template,
            parameter_values=parameters,
            get_managed_policy_map=lambda: get_bundled_managed_policy_map("aws"),
        )
    except InvalidDocumentException as error:
        for cause in error.causes:
            print(f"SAM translator: {cause.message}", file=sys.stderr)
        return 1
    json.dump(translated, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
