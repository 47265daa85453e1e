"""The provider conformance suite: one provider-agnostic contract, run offline against fakes.

Run it against a named provider with::

    pytest --pyargs daydream_conformance --daydream-provider NAME

This package imports neither pytest nor any cloud SDK at import time: the test workflow in
`daydream_conformance.workflow` is packaged into cloud functions as it is.
"""
