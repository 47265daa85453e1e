"""The Ray provider: instances are Ray actors, on a local Ray instance or a cluster.

Importing this package imports nothing else: the plugin module registers without Ray, the
function-side handler is imported by Ray's workers, and Ray is imported only by the adapter.
"""
