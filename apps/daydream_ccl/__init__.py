"""The CCL cosmology workflow for daydream (pyccl + CAMB); see docs/ccl.md."""
