"""The only package that imports boto3: narrow typed gateways to AWS."""
