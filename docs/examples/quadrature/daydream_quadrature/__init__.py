"""An adaptive-quadrature workflow for daydream (the example of docs/writing-a-workflow.md)."""
