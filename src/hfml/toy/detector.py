"""Detector response of the toy: vertexing, tracking and PID of ALICE in Run 3.

Every candidate, signal or background, goes through the same response: true
primary and secondary vertices, candidate and prong momenta and prong impact
parameters go in, the reconstructed O2 columns come out.  Resolutions are
typical ALICE ITS2/TPC/TOF figures; lengths are in cm, momenta in GeV/c.
"""

from dataclasses import dataclass

import numpy as np

from hfml.o2 import TOF_MISSING
from hfml.toy.kinematics import cross_z, norm, rotate_away, unit
from hfml.toy.physics import MASS_DS, SPECIES_MASS

SPEED_OF_LIGHT = 29.9792458
"""cm/ns"""
TOF_RADIUS = 370.0
TOF_RESOLUTION = 0.080
"""ns"""
TPC_RESOLUTION = 0.055
"""Relative dE/dx resolution."""
ALEPH = (0.76176e-1, 10.632, 0.13279e-4, 1.8631, 1.9479)
"""Parameters of the ALEPH Bethe-Bloch parametrisation (their generic defaults)."""


def bethe_bloch(beta_gamma: np.ndarray) -> np.ndarray:
    """Mean specific energy loss in the TPC, arbitrary units (ALEPH form)."""
    p1, p2, p3, p4, p5 = ALEPH
    beta = beta_gamma / np.sqrt(1 + beta_gamma**2)
    aa = beta**p4
    bb = np.log(p3 + beta_gamma ** (-p5))
    return (p2 - aa - bb) * p1 / aa


def impact_parameter_resolution(pt: np.ndarray) -> np.ndarray:
    """Transverse impact-parameter resolution: 12 μm ⊕ 30 μm · (GeV/c) / pT."""
    return np.hypot(0.0012, 0.0030 / pt)


def vertex_resolution(pt: np.ndarray) -> np.ndarray:
    """Transverse resolution of a three-prong secondary vertex."""
    return 0.002 + 0.006 / (pt + 0.5)


def tof_match_probability(pt: np.ndarray) -> np.ndarray:
    return np.clip(0.72 * (1 - np.exp(-(pt - 0.3) / 0.25)), 0, None)


@dataclass
class TrueCandidates:
    """Truth of a set of three-prong candidates (N rows)."""

    primary: np.ndarray
    """(N, 3) true primary vertex"""
    secondary: np.ndarray
    """(N, 3) true secondary vertex (for combinatorics, where the tracks meet)"""
    momentum: np.ndarray
    """(N, 3) candidate momentum"""
    prongs: np.ndarray
    """(N, 3, 3) prong momenta, ordered as in the KKπ hypothesis"""
    species: np.ndarray
    """(N, 3) true prong species (0 π, 1 K, 2 p)"""
    prong_dca: np.ndarray
    """(N, 3) true signed transverse distance of each prong to the primary vertex"""
    mass: np.ndarray
    """(N,) reconstructed invariant mass in the KKπ hypothesis"""
    delta_mass_phi: np.ndarray
    abs_cos3_pik: np.ndarray


def _pid(rng, p, eta, true_species, detector_mask, branches, k):
    """nσ of prong k in the pion and kaon hypotheses, TPC, TOF and combined."""
    beta_gamma_true = p / SPECIES_MASS[true_species]
    dedx = bethe_bloch(beta_gamma_true) * (1 + TPC_RESOLUTION * rng.normal(size=p.size))
    path = TOF_RADIUS * np.cosh(eta) / SPEED_OF_LIGHT
    mass = SPECIES_MASS[true_species]
    time = path * np.sqrt(1 + (mass / p) ** 2)
    time += TOF_RESOLUTION * rng.normal(size=p.size)
    for label, hypothesis in (("Pi", 0), ("Ka", 1)):
        expected = bethe_bloch(p / SPECIES_MASS[hypothesis])
        tpc = (dedx - expected) / (TPC_RESOLUTION * expected)
        expected_time = path * np.sqrt(1 + (SPECIES_MASS[hypothesis] / p) ** 2)
        tof = (time - expected_time) / TOF_RESOLUTION
        combined = np.where(detector_mask, np.sqrt((tpc**2 + tof**2) / 2), np.abs(tpc))
        branches[f"fNSigTpc{label}{k}"] = tpc
        branches[f"fNSigTof{label}{k}"] = np.where(detector_mask, tof, TOF_MISSING)
        branches[f"fNSigTpcTof{label}{k}"] = combined


def respond(rng: np.random.Generator, truth: TrueCandidates) -> dict[str, np.ndarray]:
    """Reconstructed lite-table columns (geometry, kinematics, PID) of candidates."""
    n = len(truth.mass)
    out: dict[str, np.ndarray] = {}

    n_contrib = 2 + rng.negative_binomial(2, 2 / (2 + 14), n)
    sigma_pv = 0.010 / np.sqrt(n_contrib)
    primary = truth.primary + sigma_pv[:, None] * rng.normal(size=(n, 3))

    p_true = norm(truth.momentum)
    pt_true = np.hypot(truth.momentum[:, 0], truth.momentum[:, 1])
    sigma_sv = vertex_resolution(pt_true)
    smear = rng.normal(size=(n, 3)) * sigma_sv[:, None] * [1.0, 1.0, 1.3]
    secondary = truth.secondary + smear

    cos_smear = np.cos(rng.normal(0, 0.0015 + 0.002 / p_true))
    direction = rotate_away(rng, truth.momentum, cos_smear)
    p_reco = direction * (p_true * (1 + 0.008 * rng.normal(size=n)))[:, None]
    pt = np.hypot(p_reco[:, 0], p_reco[:, 1])
    mt = np.sqrt(pt**2 + MASS_DS**2)
    out["fPt"] = pt
    out["fEta"] = np.arcsinh(p_reco[:, 2] / pt)
    out["fPhi"] = np.mod(np.arctan2(p_reco[:, 1], p_reco[:, 0]), 2 * np.pi)
    out["fY"] = np.arcsinh(p_reco[:, 2] / mt)
    out["fM"] = truth.mass

    flight = secondary - primary
    length = norm(flight)
    length_xy = np.hypot(flight[:, 0], flight[:, 1])
    spread = np.exp(rng.normal(0, 0.2, n))
    sigma_length = np.sqrt(sigma_sv**2 * 1.2 + sigma_pv**2) * spread
    sigma_length_xy = np.sqrt(sigma_sv**2 + sigma_pv**2) * spread
    out["fDecayLength"] = length
    out["fDecayLengthXY"] = length_xy
    out["fDecayLengthNormalised"] = length / sigma_length
    out["fDecayLengthXYNormalised"] = length_xy / sigma_length_xy
    out["fCpa"] = np.sum(flight * direction, axis=1) / length
    direction_xy = unit(direction[:, :2])
    out["fCpaXY"] = np.sum(flight[:, :2] * direction_xy, axis=1) / length_xy
    out["fImpactParameterXY"] = cross_z(flight, direction_xy)

    prong_pt_true = np.hypot(truth.prongs[..., 0], truth.prongs[..., 1])
    prong_pt = prong_pt_true * (
        1 + (0.008 + 0.001 * prong_pt_true) * rng.normal(size=(n, 3))
    )
    sigma_d0 = impact_parameter_resolution(prong_pt)
    d0 = truth.prong_dca + sigma_d0 * rng.normal(size=(n, 3))
    prong_xy = unit(truth.prongs[..., :2])
    expected_d0 = cross_z(flight[:, None, :], prong_xy)
    delta = d0 - expected_d0
    sigma_delta = np.sqrt(sigma_d0**2 + (sigma_sv**2 + sigma_pv**2)[:, None])
    out["fMaxNormalisedDeltaIP"] = np.max(np.abs(delta) / sigma_delta, axis=1)
    out["fChi2PCA"] = 2 * np.sum(delta**2, axis=1)

    prong_p = norm(truth.prongs)
    prong_eta = np.arcsinh(truth.prongs[..., 2] / prong_pt_true)
    for k in range(3):
        out[f"fPtProng{k}"] = prong_pt[:, k]
        out[f"fImpactParameter{k}"] = d0[:, k]
        tof = rng.random(n) < tof_match_probability(prong_pt[:, k])
        _pid(rng, prong_p[:, k], prong_eta[:, k], truth.species[:, k], tof, out, k)

    out["fDeltaMassPhi"] = truth.delta_mass_phi
    out["fAbsCos3PiK"] = truth.abs_cos3_pik
    out["fNumContrib"] = n_contrib
    out["fCentrality"] = rng.uniform(0, 100, n)
    out["fSign"] = rng.choice(np.array([-1, 1], np.int8), n)
    return out


def pid_compatible(branches: dict[str, np.ndarray], k: int, label: str) -> np.ndarray:
    """Prong k passes a 3σ TPC selection and, where it has TOF, a 3σ TOF one."""
    tpc = np.abs(branches[f"fNSigTpc{label}{k}"]) < 3
    tof = branches[f"fNSigTof{label}{k}"]
    return tpc & ((tof == TOF_MISSING) | (np.abs(tof) < 3))
