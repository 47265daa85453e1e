"""The AWS Lambda provider: one function per (runtime environment, tier), a layer per runtime.

Importing this package imports nothing else: the plugin module registers without boto3, the
function-side handler runs inside Lambda, and boto3 is imported only by the adapter itself.
"""
