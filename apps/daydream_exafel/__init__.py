"""daydream's `exafel` workflow: serial femtosecond crystallography with cctbx.

Modules, one job each: `crystal` (model and true structure factors), `geometry` (beam and
detector), `simulation` (still shots), `spotfinding` (hits and spots), `indexing` (known-cell
orientation), `integration` (prediction and summation), `merging` (scaling, merging,
statistics, MTZ), `workflow` (components and the phase generator), `plugin` (registration).
"""
