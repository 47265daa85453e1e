"""daydream app ``cosmoscout``: planetary data preparation for view-dependent rendering."""
