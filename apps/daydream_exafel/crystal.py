"""The crystal model: unit cell, space group, a seeded random protein-like structure, and its
structure factors computed with cctbx.

The model is the ground truth of a simulated experiment: `simulation` reads the full-sphere
intensity lookup to draw shots; `merging` compares its merged intensities with the true ones.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

# Light-atom composition of a protein by number of non-hydrogen atoms (C, N, O, S).
_ELEMENTS = ("C", "N", "O", "S")
_FRACTIONS = (0.63, 0.17, 0.19, 0.01)
# Volume per non-hydrogen protein atom, before solvent: ~ 1.35 g/cm3 protein density.
_VOLUME_PER_ATOM = 18.0


@dataclass(frozen=True)
class CrystalModel:
    """A crystal's symmetry and true structure factors (asymmetric unit, no anomalous signal)."""

    unit_cell: tuple[float, float, float, float, float, float]
    space_group: str
    d_min: float
    indices: np.ndarray  # (n, 3) int, asymmetric unit
    intensities: np.ndarray  # (n,) true |F|^2

    @cached_property
    def symmetry(self) -> Any:
        from cctbx import crystal

        return crystal.symmetry(unit_cell=self.unit_cell, space_group_symbol=self.space_group)

    @cached_property
    def b_matrix(self) -> np.ndarray:
        """Reciprocal basis (columns a*, b*, c*) in Cartesian coordinates: q = U @ B @ h."""
        from cctbx import uctbx

        frac = np.array(uctbx.unit_cell(self.unit_cell).fractionalization_matrix(), dtype=float)
        return np.ascontiguousarray(frac.reshape(3, 3).T)

    @cached_property
    def rotation_operators(self) -> np.ndarray:
        """Proper rotations of the point group, as Cartesian matrices acting on U from the right.

        Two orientations U1, U2 are equivalent when U2 = U1 @ B R B^-1 for a point-group
        rotation R (acting on Miller indices as h' = R^T h).
        """
        ops = []
        b = self.b_matrix
        b_inv = np.linalg.inv(b)
        for op in self.symmetry.space_group().build_derived_point_group().all_ops():
            r = np.array(op.r().as_double()).reshape(3, 3)
            if np.linalg.det(r) < 0:
                continue
            # Indices map as h' = R^T h, so U B h = (U B R^-T B^-1) B h': the equivalent
            # orientation is U @ (B R^-T B^-1).
            ops.append(b @ np.linalg.inv(r).T @ b_inv)
        return np.array(ops)

    @cached_property
    def index_rotations(self) -> np.ndarray:
        """Proper rotations R of the point group in index space: h and R^T h are equivalent."""
        ops = []
        for op in self.symmetry.space_group().build_derived_point_group().all_ops():
            r = np.array(op.r().as_double()).reshape(3, 3)
            if np.linalg.det(r) > 0:
                ops.append(r)
        return np.array(ops)

    @cached_property
    def p1_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """Full-sphere (P1, with Friedel mates) true intensities on a dense hkl grid.

        Returns (grid, offset): the intensity of h is ``grid[tuple(h + offset)]`` when inside,
        zero outside the resolution sphere and at the origin.
        """
        from cctbx import miller
        from cctbx.array_family import flex

        mset = miller.set(
            self.symmetry, flex.miller_index(self.indices.astype(int).tolist()), False
        )
        array = miller.array(mset, flex.double(self.intensities.astype(float)))
        full = array.expand_to_p1().generate_bijvoet_mates()
        hkl = np.array(full.indices(), dtype=np.int64).reshape(-1, 3)
        offset = np.abs(hkl).max(axis=0) + 1
        grid = np.zeros(tuple(2 * offset + 1), dtype=np.float64)
        grid[tuple((hkl + offset).T)] = np.array(full.data())
        return grid, offset

    def miller_array(self) -> Any:
        """The true intensities as a cctbx miller array (asymmetric unit)."""
        from cctbx import miller
        from cctbx.array_family import flex

        mset = miller.set(
            self.symmetry, flex.miller_index(self.indices.astype(int).tolist()), False
        )
        return miller.array(
            mset, flex.double(self.intensities.astype(float))
        ).set_observation_type_xray_intensity()

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            unit_cell=np.array(self.unit_cell, dtype=float),
            space_group=np.array(self.space_group),
            d_min=np.array(self.d_min),
            indices=self.indices,
            intensities=self.intensities,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CrystalModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            cell = tuple(float(x) for x in npz["unit_cell"])
            return cls(
                unit_cell=(cell[0], cell[1], cell[2], cell[3], cell[4], cell[5]),
                space_group=str(npz["space_group"]),
                d_min=float(npz["d_min"]),
                indices=npz["indices"].astype(np.int64),
                intensities=npz["intensities"].astype(np.float64),
            )


def build_crystal_model(
    unit_cell: tuple[float, float, float, float, float, float] | list[float],
    space_group: str,
    d_min: float,
    seed: int,
    *,
    solvent_fraction: float = 0.5,
    b_iso: float = 15.0,
) -> CrystalModel:
    """A seeded random protein-like structure in the given cell and its true intensities.

    Atoms (C/N/O/S in protein proportions, count from the asymmetric unit's volume, the
    solvent fraction and ~18 A^3 per atom) are placed uniformly at random in the asymmetric
    unit's share of the cell; B-factors scatter around `b_iso`. Structure factors are computed
    by cctbx to `d_min`: random atoms give Wilson statistics, as a real protein does.
    """
    from cctbx import crystal, xray
    from cctbx.array_family import flex

    cell = tuple(float(x) for x in unit_cell)
    symmetry = crystal.symmetry(unit_cell=cell, space_group_symbol=space_group)
    rng = np.random.default_rng(seed)
    n_ops = symmetry.space_group().order_z()
    volume = symmetry.unit_cell().volume()
    n_atoms = max(8, int(volume * (1.0 - solvent_fraction) / (n_ops * _VOLUME_PER_ATOM)))
    elements = rng.choice(_ELEMENTS, size=n_atoms, p=_FRACTIONS)
    sites = rng.random((n_atoms, 3))
    b_values = np.clip(rng.normal(b_iso, 0.25 * b_iso, n_atoms), 2.0, None)
    scatterers = flex.xray_scatterer()
    for i, (element, site, b) in enumerate(zip(elements, sites, b_values, strict=True)):
        scatterers.append(
            xray.scatterer(
                label=f"{element}{i}",
                site=(float(site[0]), float(site[1]), float(site[2])),
                b=float(b),
                scattering_type=str(element),
            )
        )
    structure = xray.structure(crystal_symmetry=symmetry, scatterers=scatterers)
    f_calc = structure.structure_factors(d_min=d_min, algorithm="direct").f_calc()
    intensities = f_calc.as_intensity_array()
    return CrystalModel(
        unit_cell=(cell[0], cell[1], cell[2], cell[3], cell[4], cell[5]),
        space_group=space_group,
        d_min=float(d_min),
        indices=np.array(intensities.indices(), dtype=np.int64).reshape(-1, 3),
        intensities=np.array(intensities.data(), dtype=np.float64),
    )
