"""The embedded local serverless platform: instances are real OS processes.

Kept free of imports: every instance process starts by importing this package, and its
resource envelope must be applied before any library starts threads.
"""
