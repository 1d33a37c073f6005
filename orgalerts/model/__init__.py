"""Pure data and pure functions: resources, plans, patterns, messages, names and ARNs.

Nothing in this package calls AWS or imports boto3/botocore (the import contract in pyproject.toml
enforces it), so everything here is tested on literal data in milliseconds.
"""
