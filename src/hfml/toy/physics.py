"""Physics constants and spectra of the toy sample.

Masses, widths and lifetimes are PDG 2024 values (GeV/c², GeV, cm).  The
branching-fraction ratios are PDG values of the resonant KKπ channels; the
spectra are shaped like measured D-meson pT spectra in pp collisions at
13.6 TeV (a power law above a few GeV/c, the non-prompt one harder).
"""

from dataclasses import dataclass

import numpy as np

from hfml.o2 import MASS_DPLUS, MASS_DS  # noqa: F401 (re-exported)

MASS_PHI = 1.019461
WIDTH_PHI = 0.004249
MASS_KSTAR0 = 0.89555
WIDTH_KSTAR0 = 0.0473
MASS_PION = 0.13957
MASS_KAON = 0.493677
MASS_PROTON = 0.938272

CTAU_DS = 0.0150
CTAU_DPLUS = 0.0312

SPECIES_MASS = np.array([MASS_PION, MASS_KAON, MASS_PROTON])
"""Prong species codes: 0 pion, 1 kaon, 2 proton."""
PION, KAON, PROTON = 0, 1, 2


@dataclass(frozen=True)
class BHadron:
    pdg: int
    mass: float
    ctau: float
    fraction: float
    """Share among the b hadrons that feed the non-prompt D mesons."""


B_HADRONS = (
    BHadron(511, 5.27966, 0.04557, 0.40),
    BHadron(521, 5.27934, 0.04911, 0.40),
    BHadron(531, 5.36692, 0.04527, 0.10),
    BHadron(5122, 5.61960, 0.04410, 0.10),
)

PHI_PI_FRACTION = {"ds": 2.21 / (2.21 + 2.58), "dplus": 0.269 / (0.269 + 0.249)}
"""Share of Ds → φπ (else K*0 K) among the resonant KKπ decays, from PDG BRs."""

DPLUS_PER_DS = 0.35
"""D+ per Ds+ reaching KKπ through φπ or K*0K in data: production ratio ≈ 2
times the ratio of the resonant branching fractions (0.52% / 4.79%), ≈ 0.22,
raised to make the D+ peak well visible as in ALICE spectra."""

NONPROMPT_FRACTION = 0.08
"""Share of non-prompt Ds+ (from b-hadron decays) among those produced."""

RAPIDITY_RANGE = 1.0
"""D mesons are generated flat in |y| < this."""

ETA_ACCEPTANCE = 0.8
PRONG_PT_MIN = 0.1
"""A prong is reconstructed if |η| < 0.8 and pT > 0.1 GeV/c (ITS-TPC)."""

MASS_WINDOW = (1.7, 2.2)
"""Invariant-mass range written by the tree creator, GeV/c²."""


@dataclass(frozen=True)
class Spectrum:
    """dN/dpT ∝ pT (1 + (pT/p0)²)^(-n), sampled between pt_min and pt_max."""

    p0: float
    n: float
    pt_min: float = 0.0
    pt_max: float = 36.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        grid = np.linspace(self.pt_min, self.pt_max, 4001)
        density = grid * (1 + (grid / self.p0) ** 2) ** (-self.n)
        cdf = np.concatenate([[0], np.cumsum(0.5 * (density[1:] + density[:-1]))])
        return np.interp(rng.random(size) * cdf[-1], cdf, grid)


PROMPT_SPECTRUM = Spectrum(p0=2.6, n=3.1)
NONPROMPT_SPECTRUM = Spectrum(p0=3.8, n=3.0)
BACKGROUND_SPECTRUM = Spectrum(p0=1.9, n=2.9, pt_min=1.0)
"""Combinatorial triplets, above the tree creator's pT threshold."""
