"""Vectorised relativistic kinematics.

Four-vectors are arrays whose last axis is (E, px, py, pz), in GeV.
"""

import numpy as np


def norm(v: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(v * v, axis=-1))


def unit(v: np.ndarray) -> np.ndarray:
    return v / norm(v)[..., None]


def cross_z(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z component of a × b, i.e. the signed transverse distance for unit b."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def four_vector(p3: np.ndarray, mass: np.ndarray | float) -> np.ndarray:
    energy = np.sqrt(np.sum(p3 * p3, axis=-1) + np.square(mass))
    return np.concatenate([energy[..., None], p3], axis=-1)


def invariant_mass(p4: np.ndarray) -> np.ndarray:
    m2 = p4[..., 0] ** 2 - np.sum(p4[..., 1:] ** 2, axis=-1)
    return np.sqrt(np.clip(m2, 0, None))


def momentum(pt, rapidity, phi, mass) -> np.ndarray:
    """Three-momentum from transverse momentum, rapidity and azimuth."""
    mt = np.sqrt(pt**2 + mass**2)
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(rapidity)], -1)


def boost(p4: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Boost four-vectors by velocity ``beta`` (from the rest frame to the lab)."""
    b2 = np.sum(beta * beta, axis=-1)
    gamma = 1 / np.sqrt(1 - b2)
    bp = np.sum(beta * p4[..., 1:], axis=-1)
    gamma2 = np.where(b2 > 0, (gamma - 1) / np.where(b2 > 0, b2, 1), 0)
    p3 = p4[..., 1:] + (gamma2 * bp + gamma * p4[..., 0])[..., None] * beta
    energy = gamma * (p4[..., 0] + bp)
    return np.concatenate([energy[..., None], p3], axis=-1)


def velocity(p4: np.ndarray) -> np.ndarray:
    return p4[..., 1:] / p4[..., :1]


def random_directions(rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit vectors distributed uniformly on the sphere."""
    cos = rng.uniform(-1, 1, size)
    phi = rng.uniform(0, 2 * np.pi, size)
    sin = np.sqrt(1 - cos**2)
    return np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], -1)


def rotate_away(
    rng: np.random.Generator, axis: np.ndarray, cos_angle: np.ndarray
) -> np.ndarray:
    """Unit vectors at the given cosine to ``axis``, at a random azimuth around it."""
    axis = unit(axis)
    helper = np.where(np.abs(axis[..., 2:3]) < 0.9, [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    u = unit(np.cross(axis, helper))
    v = np.cross(axis, u)
    azimuth = rng.uniform(0, 2 * np.pi, axis.shape[:-1])[..., None]
    sin_angle = np.sqrt(np.clip(1 - cos_angle**2, 0, None))[..., None]
    return cos_angle[..., None] * axis + sin_angle * (
        np.cos(azimuth) * u + np.sin(azimuth) * v
    )


def breakup_momentum(parent, m1, m2) -> np.ndarray:
    """Momentum of either daughter in the rest frame of a two-body decay."""
    term = (parent**2 - (m1 + m2) ** 2) * (parent**2 - (m1 - m2) ** 2)
    return np.sqrt(np.clip(term, 0, None)) / (2 * parent)


def truncated_breit_wigner(
    rng: np.random.Generator, mass: float, width: float, low, high, size: int
) -> np.ndarray:
    """``size`` non-relativistic Breit-Wigner (Cauchy) masses in [low, high]."""
    lo = np.arctan(2 * (low - mass) / width)
    hi = np.arctan(2 * (high - mass) / width)
    return mass + 0.5 * width * np.tan(rng.uniform(lo, hi, size))
