"""Generation of toy Ds+ → KKπ candidate files in the O2Physics layout.

Signal D mesons are generated with measured-like pT spectra, decayed through
φπ or K*0K with the vector resonance's helicity distribution, given a flight
length from cτ and βγ (non-prompt ones after the flight of their b hadron), and
passed through the detector response.  Combinatorial background triplets are
made of prompt and secondary tracks meeting at a fake vertex close to the
primary one.  All candidates then pass the selection the tree creator applies
(pT, cosine of pointing angle, mass window, PID of the KKπ hypothesis).
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hfml.o2 import LITE_BRANCHES, McChannel, McFlag, McOrigin
from hfml.toy import kinematics as kin
from hfml.toy import physics as phys
from hfml.toy.detector import TrueCandidates, pid_compatible, respond

SOURCES = ("data", "mc")
CPA_MIN = 0.8
"""Loose pointing cut of the tree creator."""
TRIPLET_SPECIES_MIX = ([0.4, 0.5, 0.1], [0.4, 0.5, 0.1], [0.8, 0.15, 0.05])
"""(π, K, p) probabilities of the three prongs of a background triplet."""
DF_BASE = 2261906078600000
"""Time-frame numbers of the toy files start here, as in recent Run 3 data."""


@dataclass(frozen=True)
class Signal:
    """One kind of signal: Ds+ or D+, prompt or non-prompt."""

    species: str
    nonprompt: bool

    @property
    def mass(self) -> float:
        return phys.MASS_DS if self.species == "ds" else phys.MASS_DPLUS

    @property
    def ctau(self) -> float:
        return phys.CTAU_DS if self.species == "ds" else phys.CTAU_DPLUS

    @property
    def flag(self) -> int:
        return McFlag.DS_TO_KKPI if self.species == "ds" else McFlag.DPLUS_TO_KKPI

    @property
    def channels(self) -> tuple[int, int]:
        """(φπ, K*0K) codes of fFlagMcDecayChanRec."""
        if self.species == "ds":
            return McChannel.DS_PHI_PI, McChannel.DS_KSTAR0_K
        return McChannel.DPLUS_PHI_PI, McChannel.DPLUS_KSTAR0_K

    @property
    def spectrum(self) -> phys.Spectrum:
        return phys.NONPROMPT_SPECTRUM if self.nonprompt else phys.PROMPT_SPECTRUM


def mass_resolution(pt: np.ndarray, resolution: Mapping) -> np.ndarray:
    """Configured width of the mass peaks: constant + slope · pT (GeV/c²)."""
    return resolution["constant"] + resolution["slope"] * pt


def _primary_vertices(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(0, 1, (n, 3)) * [0.003, 0.003, 5.0]


def _helicity_cosine(rng: np.random.Generator, n: int) -> np.ndarray:
    """cos θ with density ∝ cos²θ, as for a vector from a pseudoscalar decay."""
    return rng.choice([-1.0, 1.0], n) * rng.random(n) ** (1 / 3)


def _decay(rng, parent: np.ndarray, mass: float, phi_pi: np.ndarray):
    """Prong four-vectors (N, 3, 4) of D → φπ or K*0K → KKπ, in KKπ order.

    The decay is built in the D rest frame, where the resonance's helicity axis
    is its flight direction, then boosted to the laboratory.
    """
    n = len(parent)
    resonance_mass = np.where(
        phi_pi,
        kin.truncated_breit_wigner(
            rng,
            phys.MASS_PHI,
            phys.WIDTH_PHI,
            2 * phys.MASS_KAON + 1e-4,
            mass - phys.MASS_PION - 1e-4,
            n,
        ),
        kin.truncated_breit_wigner(
            rng,
            phys.MASS_KSTAR0,
            phys.WIDTH_KSTAR0,
            phys.MASS_KAON + phys.MASS_PION + 1e-4,
            mass - phys.MASS_KAON - 1e-4,
            n,
        ),
    )
    bachelor_mass = np.where(phi_pi, phys.MASS_PION, phys.MASS_KAON)
    second_mass = np.where(phi_pi, phys.MASS_KAON, phys.MASS_PION)

    axis = kin.random_directions(rng, n)
    q = kin.breakup_momentum(mass, resonance_mass, bachelor_mass)[:, None]
    resonance = kin.four_vector(q * axis, resonance_mass)
    bachelor = kin.four_vector(-q * axis, bachelor_mass)
    direction = kin.rotate_away(rng, axis, _helicity_cosine(rng, n))
    q2 = kin.breakup_momentum(resonance_mass, phys.MASS_KAON, second_mass)[:, None]
    beta = kin.velocity(resonance)
    first = kin.boost(kin.four_vector(q2 * direction, phys.MASS_KAON), beta)
    second = kin.boost(kin.four_vector(-q2 * direction, second_mass), beta)

    # K+ K- π+ is (first, second, bachelor) for φπ, (bachelor, first, second) for K*0K
    choose = phi_pi[:, None]
    prongs = np.stack(
        [
            np.where(choose, first, bachelor),
            np.where(choose, second, first),
            np.where(choose, bachelor, second),
        ],
        axis=1,
    )
    return kin.boost(prongs, kin.velocity(parent)[:, None, :])


def _resonance_observables(rng, prongs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|M(KK) - M(φ)| and |cos³| of the π-K angle in the KK rest frame."""
    pair = prongs[:, 0] + prongs[:, 1]
    m_kk = kin.invariant_mass(pair) + rng.normal(0, 0.0012, len(pair))
    beta = -kin.velocity(pair)
    kaon = kin.unit(kin.boost(prongs[:, 0], beta)[:, 1:])
    pion = kin.unit(kin.boost(prongs[:, 2], beta)[:, 1:])
    cosine = np.sum(kaon * pion, axis=1)
    return np.abs(m_kk - phys.MASS_PHI), np.abs(cosine) ** 3


def _flight(rng, signal: Signal, momentum: np.ndarray):
    """Secondary vertices after the D (and, if non-prompt, the b-hadron) flight."""
    n = len(momentum)
    p = kin.norm(momentum)
    direction = momentum / p[:, None]
    primary = _primary_vertices(rng, n)
    secondary = (
        primary + direction * rng.exponential(p / signal.mass * signal.ctau)[:, None]
    )
    pdg_b = np.zeros(n, np.int32)
    if signal.nonprompt:
        choice = rng.choice(
            len(phys.B_HADRONS), n, p=[b.fraction for b in phys.B_HADRONS]
        )
        b_mass = np.array([b.mass for b in phys.B_HADRONS])[choice]
        b_ctau = np.array([b.ctau for b in phys.B_HADRONS])[choice]
        pdg_b = np.array([b.pdg for b in phys.B_HADRONS], np.int32)[choice]
        b_momentum = p / rng.beta(7, 3, n)
        angle = np.minimum(np.abs(rng.normal(0, 0.5 / (p + 1.0))), 1.2)
        b_direction = kin.rotate_away(rng, direction, np.cos(angle))
        b_flight = rng.exponential(b_momentum / b_mass * b_ctau)
        secondary += b_direction * b_flight[:, None]
    return primary, secondary, pdg_b


def _accepted(prongs: np.ndarray) -> np.ndarray:
    pt = np.hypot(prongs[..., 1], prongs[..., 2])
    eta = np.arcsinh(prongs[..., 3] / pt)
    return np.all((np.abs(eta) < phys.ETA_ACCEPTANCE) & (pt > phys.PRONG_PT_MIN), 1)


def tree_selection(branches: Mapping[str, np.ndarray]) -> np.ndarray:
    """What the selector and tree creator keep: pT ≥ 1 GeV/c, cos θp > 0.8,
    mass in the window, and prongs compatible with K, K, π."""
    low, high = phys.MASS_WINDOW
    keep = (branches["fPt"] >= 1.0) & (branches["fCpa"] > CPA_MIN)
    keep &= (branches["fM"] >= low) & (branches["fM"] < high)
    keep &= pid_compatible(branches, 0, "Ka") & pid_compatible(branches, 1, "Ka")
    return keep & pid_compatible(branches, 2, "Pi")


def _select(branches: dict, truth: dict, keep: np.ndarray) -> tuple[dict, dict]:
    swapped_ok = (
        pid_compatible(branches, 0, "Pi")
        & pid_compatible(branches, 1, "Ka")
        & pid_compatible(branches, 2, "Ka")
    )
    branches["fIsSelDsToKKPi"] = np.ones(len(keep), np.int32)
    branches["fIsSelDsToPiKK"] = swapped_ok.astype(np.int32)
    return (
        {k: v[keep] for k, v in branches.items()},
        {k: v[keep] for k, v in truth.items()},
    )


def generate_signal(
    rng: np.random.Generator, signal: Signal, n: int, resolution: Mapping
) -> tuple[dict, dict, pd.DataFrame]:
    """Generate ``n`` D mesons; return the candidates that reach the tree
    (branches and per-row truth) and the generator-level table of all ``n``."""
    pt = signal.spectrum.sample(rng, n)
    rapidity = rng.uniform(-phys.RAPIDITY_RANGE, phys.RAPIDITY_RANGE, n)
    momentum = kin.momentum(pt, rapidity, rng.uniform(0, 2 * np.pi, n), signal.mass)
    phi_pi = rng.random(n) < phys.PHI_PI_FRACTION[signal.species]
    prongs = _decay(rng, kin.four_vector(momentum, signal.mass), signal.mass, phi_pi)
    delta_mass_phi, cos3 = _resonance_observables(rng, prongs)
    primary, secondary, pdg_b = _flight(rng, signal, momentum)
    prong_xy = kin.unit(prongs[..., 1:3])
    mass = signal.mass + mass_resolution(pt, resolution) * rng.normal(size=n)
    truth_candidates = TrueCandidates(
        primary=primary,
        secondary=secondary,
        momentum=momentum,
        prongs=prongs[..., 1:],
        species=np.tile([phys.KAON, phys.KAON, phys.PION], (n, 1)),
        prong_dca=kin.cross_z((secondary - primary)[:, None, :], prong_xy),
        mass=mass,
        delta_mass_phi=delta_mass_phi,
        abs_cos3_pik=cos3,
    )
    branches = respond(rng, truth_candidates)
    origin = McOrigin.NONPROMPT if signal.nonprompt else McOrigin.PROMPT
    channel = np.where(phi_pi, *signal.channels).astype(np.int8)
    truth = {
        "flag": (branches["fSign"] * signal.flag).astype(np.int8),
        "origin": np.full(n, origin, np.int8),
        "channel": channel,
        "pdg_b": pdg_b,
        "pt_true": pt,
    }
    keep = _accepted(prongs) & tree_selection(branches)
    generated = pd.DataFrame(
        {
            "flag": truth["flag"],
            "origin": truth["origin"],
            "channel": channel,
            "pt": pt.astype(np.float32),
            "y": rapidity.astype(np.float32),
            "in_tree": keep,
        }
    )
    return (*_select(branches, truth, keep), generated)


def _background_batch(rng: np.random.Generator, n: int):
    """Combinatorial triplets before the tree selection.

    A quarter of the tracks come from decays of long-lived particles and miss
    the primary vertex; the three tracks meet at a fake vertex near the primary
    one, farther when secondary tracks are involved.  One triplet in five holds
    a real φ → KK paired with a random pion.  The species mix and the fake
    vertex in front of the primary one are those of triplets that survive the
    selector's PID and pointing cuts, which saves generating what it rejects.
    """
    pt = phys.BACKGROUND_SPECTRUM.sample(rng, n)
    eta = rng.uniform(-phys.ETA_ACCEPTANCE, phys.ETA_ACCEPTANCE, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    momentum = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], -1)
    direction = momentum / kin.norm(momentum)[:, None]

    opening = rng.rayleigh(0.45 / (1 + pt / 2), (3, n)).T
    prong_direction = kin.rotate_away(
        rng, np.repeat(direction[:, None, :], 3, axis=1), np.cos(opening)
    )
    shares = rng.dirichlet([2.0, 2.0, 2.0], n)
    prongs = prong_direction * (shares * kin.norm(momentum)[:, None])[..., None]
    species = np.stack([rng.choice(3, n, p=mix) for mix in TRIPLET_SPECIES_MIX], axis=1)

    secondary_track = rng.random((n, 3)) < 0.25
    prong_dca = np.where(secondary_track, rng.laplace(0, 0.006, (n, 3)), 0.0)
    along = np.abs(rng.normal(0, 0.010, n))
    along += np.any(secondary_track, 1) * rng.exponential(0.02, n)
    across = (
        kin.rotate_away(rng, direction, np.zeros(n)) * rng.normal(0, 0.003, n)[:, None]
    )
    primary = _primary_vertices(rng, n)
    secondary = primary + direction * along[:, None] + across

    low, high = phys.MASS_WINDOW
    slope = 1.5 + 6.0 / pt
    u = rng.random(n)
    mass = low - np.log1p(-u * (1 - np.exp(-slope * (high - low)))) / slope

    real_phi = rng.random(n) < 0.2
    m_kk = np.where(
        real_phi,
        kin.truncated_breit_wigner(
            rng, phys.MASS_PHI, phys.WIDTH_PHI, 2 * phys.MASS_KAON + 1e-4, 1.2, n
        ),
        2 * phys.MASS_KAON + rng.gamma(2.0, 0.12, n),
    )
    m_kk += rng.normal(0, 0.0012, n)
    candidates = TrueCandidates(
        primary=primary,
        secondary=secondary,
        momentum=momentum,
        prongs=prongs,
        species=species,
        prong_dca=prong_dca,
        mass=mass,
        delta_mass_phi=np.abs(m_kk - phys.MASS_PHI),
        abs_cos3_pik=np.abs(rng.uniform(-1, 1, n)) ** 3,
    )
    branches = respond(rng, candidates)
    keep = _accepted(np.concatenate([np.zeros((n, 3, 1)), prongs], -1))
    return branches, keep & tree_selection(branches), pt


def generate_background(rng: np.random.Generator, n: int) -> tuple[dict, dict]:
    """``n`` combinatorial-background candidates that pass the tree selection."""
    parts: list[dict] = []
    truths: list[dict] = []
    found = 0
    while found < n:
        batch = max(3 * (n - found), 1000)
        branches, keep, pt = _background_batch(rng, batch)
        truth = {"pt_true": pt}
        selected, selected_truth = _select(branches, truth, keep)
        parts.append(selected)
        truths.append(selected_truth)
        found += int(keep.sum())
    branches = {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0]}
    pt_true = np.concatenate([t["pt_true"] for t in truths])[:n]
    zeros = np.zeros(n, np.int8)
    truth = {
        "flag": zeros,
        "origin": zeros,
        "channel": zeros,
        "pdg_b": np.zeros(n, np.int32),
        "pt_true": pt_true,
    }
    return branches, truth


@dataclass
class ToyFile:
    """Content of one toy file: trees per DF_ folder and the truth sidecars."""

    frames: dict[str, dict[str, np.ndarray]]
    truth: pd.DataFrame
    """Truth of every tree row, with its folder and entry."""
    generated: pd.DataFrame
    """Every generated D meson, with whether it reached the tree."""


def composition(source: str, sizes: Mapping) -> dict[Signal, int]:
    """Number of D mesons of each kind generated in one file."""
    if source == "data":
        ds = sizes["ds_per_file"]
        dplus = ds * phys.DPLUS_PER_DS
        fraction = phys.NONPROMPT_FRACTION
        counts = {
            Signal("ds", False): ds * (1 - fraction),
            Signal("ds", True): ds * fraction,
            Signal("dplus", False): dplus * (1 - fraction),
            Signal("dplus", True): dplus * fraction,
        }
    else:
        counts = {
            Signal("ds", False): sizes["ds_per_file"] / 2,
            Signal("ds", True): sizes["ds_per_file"] / 2,
            Signal("dplus", False): sizes["dplus_per_file"] / 2,
            Signal("dplus", True): sizes["dplus_per_file"] / 2,
        }
    return {signal: round(count) for signal, count in counts.items()}


def file_rng(seed: int, source: str, index: int) -> np.random.Generator:
    """Independent, reproducible random stream of one file."""
    return np.random.default_rng([seed, SOURCES.index(source), index])


def generate_file(source: str, index: int, toy: Mapping) -> ToyFile:
    """Generate file ``index`` of ``source`` (``data`` or ``mc``) of the toy sample."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    rng = file_rng(toy["seed"], source, index)
    sizes = toy[source]
    resolution = toy["mass_resolution"]
    parts, truths, generated = [], [], []
    for signal, count in composition(source, sizes).items():
        branches, truth, gen = generate_signal(rng, signal, count, resolution)
        parts.append(branches)
        truths.append(truth)
        generated.append(gen)
    branches, truth = generate_background(rng, sizes["background_per_file"])
    parts.append(branches)
    truths.append(truth)

    order = rng.permutation(sum(len(t["flag"]) for t in truths))
    columns = {k: np.concatenate([p[k] for p in parts])[order] for k in parts[0]}
    truth = pd.DataFrame(
        {k: np.concatenate([t[k] for t in truths])[order] for k in truths[0]}
    )
    _fill_mc_truth(columns, truth, mc=source == "mc")

    n_folders = sizes["dataframes_per_file"]
    bounds = np.linspace(0, len(order), n_folders + 1).astype(np.int64)
    frames, folder_of_row, entry = (
        {},
        np.empty(len(order), np.int64),
        np.empty(len(order), np.int64),
    )
    for k in range(n_folders):
        start, stop = bounds[k], bounds[k + 1]
        number = DF_BASE + 1000 * index + k
        frames[f"DF_{number}"] = {
            name: columns[name][start:stop].astype(dtype)
            for name, dtype in LITE_BRANCHES.items()
        }
        folder_of_row[start:stop] = number
        entry[start:stop] = np.arange(stop - start)
    truth.insert(0, "entry", entry)
    truth.insert(0, "df", folder_of_row)
    truth["pt_true"] = truth["pt_true"].astype(np.float32)
    return ToyFile(frames, truth, pd.concat(generated, ignore_index=True))


def _fill_mc_truth(columns: dict, truth: pd.DataFrame, mc: bool) -> None:
    """MC truth branches from the truth table in MC; zero in data."""
    n = len(truth)
    values = {
        "fFlagMcMatchRec": truth["flag"],
        "fOriginMcRec": truth["origin"],
        "fFlagMcDecayChanRec": truth["channel"],
        "fPdgBhadMotherPart": truth["pdg_b"],
    }
    for name, value in values.items():
        columns[name] = np.asarray(value) if mc else np.zeros(n)
    columns["fIsCandidateSwapped"] = np.zeros(n)
