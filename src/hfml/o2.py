"""What hfml knows of the ALICE O2Physics candidate trees.

The PWGHF tree creators write one TTree per table, named ``O2`` plus the table
name in lower case, inside one ``DF_<n>`` folder per time frame.  A column
``Name`` is stored as branch ``fName``.  Lengths are in cm, masses in GeV/c²
and momenta in GeV/c.
"""

import re
from collections.abc import Sequence

import numpy as np

DF_PREFIX = "DF_"
"""Only keys that start with this prefix hold candidate trees."""

DEFAULT_TREE = "O2hfcanddslite"

MASS_DS = 1.96835
MASS_DPLUS = 1.86966
"""PDG 2024 masses of the Ds+ and D+ mesons, GeV/c²."""

TOF_MISSING = -999.0
"""Value of a TOF nσ branch when the track has no TOF information."""

_F4 = np.dtype(np.float32)
_PID = ("Tpc", "Tof", "TpcTof")


def _lite_branches() -> dict[str, np.dtype]:
    """Branches of ``O2hfcanddslite`` in the order the tree creator writes them."""
    branches = {f"fPtProng{k}": _F4 for k in range(3)}
    branches |= {f"fImpactParameter{k}": _F4 for k in range(3)}
    for k in range(3):
        for detector in _PID:
            for species in ("Pi", "Ka"):
                branches[f"fNSig{detector}{species}{k}"] = _F4
    branches["fIsSelDsToKKPi"] = np.dtype(np.int32)
    branches["fIsSelDsToPiKK"] = np.dtype(np.int32)
    scalars = (
        "fM fPt fEta fPhi fY fDecayLength fDecayLengthXY fDecayLengthNormalised "
        "fDecayLengthXYNormalised fCpa fCpaXY fMaxNormalisedDeltaIP "
        "fImpactParameterXY fDeltaMassPhi fAbsCos3PiK fChi2PCA fCentrality"
    )
    for name in scalars.split():
        branches[name] = _F4
    branches["fNumContrib"] = np.dtype(np.uint16)
    branches["fFlagMcMatchRec"] = np.dtype(np.int8)
    branches["fOriginMcRec"] = np.dtype(np.int8)
    branches["fFlagMcDecayChanRec"] = np.dtype(np.int8)
    branches["fPdgBhadMotherPart"] = np.dtype(np.int32)
    branches["fIsCandidateSwapped"] = np.dtype(np.int8)
    branches["fSign"] = np.dtype(np.int8)
    return branches


LITE_BRANCHES: dict[str, np.dtype] = _lite_branches()
"""Branch name to numpy dtype of the Ds → KKπ lite table."""

MC_TRUTH_BRANCHES = (
    "fFlagMcMatchRec",
    "fOriginMcRec",
    "fFlagMcDecayChanRec",
    "fPdgBhadMotherPart",
    "fIsCandidateSwapped",
)
"""Branches filled from the MC truth; zero in real data."""

KNOWN_BRANCHES: dict[str, dict[str, np.dtype]] = {DEFAULT_TREE: LITE_BRANCHES}
"""Documented branch types per tree name, used to check the trees that are read."""


class McFlag:
    """``fFlagMcMatchRec`` magnitudes (sign = charge), encoding since mid-2025."""

    DS_TO_KKPI = 5
    DPLUS_TO_KKPI = 4


class McChannel:
    """``fFlagMcDecayChanRec`` values of the resonant channels."""

    NONE = 0
    DPLUS_PHI_PI = 1
    DPLUS_KSTAR0_K = 2
    DS_PHI_PI = 6
    DS_KSTAR0_K = 8


class McOrigin:
    """``fOriginMcRec`` values."""

    NONE = 0
    PROMPT = 1
    NONPROMPT = 2


def _accepted_ds_features() -> tuple[str, ...]:
    prongs = ("impactParameterXY", "impactParameterZ", "ptProng")
    pid = ("nSigTpcPi", "nSigTpcKa", "nSigTofPi", "nSigTofKa", "nSigTpcTofPi")
    pid += ("nSigTpcTofKa",)
    names = [
        "chi2PCA",
        "decayLength",
        "decayLengthXY",
        "decayLengthNormalised",
        "decayLengthXYNormalised",
        "maxNormalisedDeltaIP",
        "cpa",
        "cpaXY",
        "impactParameterXY",
        *(f"{p}{k}" for p in (*prongs, *pid) for k in range(3)),
        "nSigTpcKaExpKa0",
        "nSigTpcPiExpPi2",
        "nSigTofKaExpKa0",
        "nSigTofPiExpPi2",
        "nSigTpcTofKaExpKa0",
        "nSigTpcTofPiExpPi2",
        "absCos3PiK",
        "deltaMassPhi",
    ]
    return tuple(names)


DS_SELECTOR = "hf-candidate-selector-ds-to-k-k-pi"
"""Task name of the Ds selector in a dpl-config."""
DS_ML_FEATURES = _accepted_ds_features()
"""Names the Ds selector accepts in ``namesInputFeatures``."""


def o2_feature_name(branch: str) -> str:
    """The O2Physics input-feature name of a tree branch.

    ``fImpactParameter<k>`` is ``impactParameterXY<k>``; otherwise the name is
    the branch without its ``f``, first letter in lower case.
    """
    stem = branch.removeprefix("f")
    if match := re.fullmatch(r"ImpactParameter(\d)", stem):
        return f"impactParameterXY{match.group(1)}"
    return stem[:1].lower() + stem[1:]


def bin_index(pt: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Index of the [low, high) bin of each pT, as O2Physics bins; -1 below the
    first edge or at or above the last one."""
    edges = np.asarray(edges, np.float64)
    index = np.searchsorted(edges, np.asarray(pt, np.float64), side="right") - 1
    return np.where(index >= len(edges) - 1, -1, index)
