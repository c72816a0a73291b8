"""One plotting style for every figure: mplhep's ALICE style, readable labels
with units, class names from the configuration and the pT bin in the title."""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mplhep

from hfml.files import atomic_outputs

mplhep.style.use("ALICE")
plt.rcParams.update(
    {
        "figure.dpi": 90,
        "savefig.dpi": 90,
        "font.size": 11,
        "axes.labelsize": 10,
        "axes.titlesize": 11,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 8,
        "figure.titlesize": 13,
        "xtick.minor.visible": False,
        "ytick.minor.visible": False,
    }
)

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")

LABELS = {
    "fM": ("$M$(KKπ)", "GeV/$c^2$"),
    "fPt": ("$p_\\mathrm{T}$", "GeV/$c$"),
    "fY": ("$y$", None),
    "fEta": ("η", None),
    "fPhi": ("φ", "rad"),
    "fCpa": ("cos $\\theta_\\mathrm{p}$", None),
    "fCpaXY": ("cos $\\theta_\\mathrm{p}^{xy}$", None),
    "fDecayLength": ("decay length", "cm"),
    "fDecayLengthXY": ("decay length $xy$", "cm"),
    "fDecayLengthNormalised": ("normalised decay length", None),
    "fDecayLengthXYNormalised": ("normalised decay length $xy$", None),
    "fImpactParameterXY": ("$d_0^{xy}$ of the candidate", "cm"),
    "fMaxNormalisedDeltaIP": ("max normalised $\\Delta d_0$", None),
    "fChi2PCA": ("$\\chi^2_\\mathrm{PCA}$", "cm$^2$"),
    "fDeltaMassPhi": ("|$M$(KK) − $M$(φ)|", "GeV/$c^2$"),
    "fAbsCos3PiK": ("|cos$^3\\theta'$(πK)|", None),
    "fCentrality": ("centrality", "%"),
    "fNumContrib": ("primary-vertex contributors", None),
}
_PRONG = re.compile(r"^f(PtProng|ImpactParameter)(\d)$")
_PID = re.compile(r"^fNSig(TpcTof|Tpc|Tof)(Pi|Ka)(\d)$")


def axis_label(branch: str) -> str:
    """Axis title of a tree branch, with its unit."""
    if branch in LABELS:
        name, unit = LABELS[branch]
    elif match := _PRONG.match(branch):
        kind, prong = match.groups()
        name = "$p_\\mathrm{T}$" if kind == "PtProng" else "$d_0^{xy}$"
        name = f"{name} prong {prong}"
        unit = "GeV/$c$" if kind == "PtProng" else "cm"
    elif match := _PID.match(branch):
        detector, species, prong = match.groups()
        detector = {"TpcTof": "TPC-TOF", "Tpc": "TPC", "Tof": "TOF"}[detector]
        particle = {"Pi": "π", "Ka": "K"}[species]
        name = f"$n_\\sigma^\\mathrm{{{detector}}}$({particle}) prong {prong}"
        unit = None
    else:
        name, unit = branch.removeprefix("f"), None
    return f"{name} ({unit})" if unit else name


def pt_title(low: float, high: float) -> str:
    return f"${low:g} \\leq p_\\mathrm{{T}} < {high:g}$ GeV/$c$"


def grid(n: int, columns: int = 4, size: float = 3.4, left: float = 0.85):
    """A figure with ``n`` axes in rows of ``columns``, fixed margins.

    Fixed margins (in inches) replace matplotlib's tight layout, which costs
    more than drawing the figure.
    """
    columns = min(columns, n)
    rows = (n + columns - 1) // columns
    width, height = size, size * 0.8
    right, bottom, top, gap_y = 0.25, 0.7, 0.6, 0.75
    gap_x = max(left, 0.85)
    fig_width = left + right + columns * width + (columns - 1) * gap_x
    fig_height = bottom + top + rows * height + (rows - 1) * gap_y
    fig, axes = plt.subplots(
        rows, columns, figsize=(fig_width, fig_height), squeeze=False
    )
    fig.subplots_adjust(
        left=left / fig_width,
        right=1 - right / fig_width,
        bottom=bottom / fig_height,
        top=1 - top / fig_height,
        wspace=gap_x / width,
        hspace=gap_y / height,
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def save(fig, path: str | Path, title: str | None = None) -> None:
    """Write a figure as PNG atomically and close it."""
    if title:
        fig.suptitle(title, y=1 - 0.15 / fig.get_figheight())
    with atomic_outputs(path) as (temporary,):
        fig.savefig(temporary, format="png")
    plt.close(fig)


def legend(ax, **kwargs) -> None:
    ax.legend(fontsize="small", frameon=False, **kwargs)
