"""daydream app ``trace``: replay recorded workflows with calibrated real work."""
