"""`runai top node`: each GPU drawn so a person sees at a glance how it is shared.

A MIG GPU is a bar of its memory slices cut into its GPU instances (profile, job, or "idle"),
with free slices marked, followed by a device table in the spirit of `nvidia-smi`'s "MIG devices".
A fraction GPU is a bar of shares followed by a table of the jobs sharing it. Simulated GPUs say
so in their heading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..enforcement.mechanisms import display_enforcement
from ..model import MILLI, slice_span
from .table import TextTable

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

    from ..backends.api import GpuView, NodeView

SLICE_WIDTH = 10  # characters per memory slice
BAR_WIDTH = 80  # characters for a whole GPU shown as a bar of shares

STYLE = {"used": "bold green", "idle": "yellow", "free": "dim", "creating": "cyan", "destroying": "red"}


@dataclass(frozen=True)
class Segment:
    """One cell of a bar: `width` characters (its border included) and two lines of label."""

    width: int
    top: str
    bottom: str
    state: str  # used | idle | free | creating | destroying


def mig_segments(gpu: GpuView) -> list[Segment]:
    """Instances in slice order, with free runs between them; width in slices × SLICE_WIDTH."""
    segments: list[Segment] = []
    cursor = 0
    for inst in sorted(gpu.mig_instances, key=lambda m: m.start):
        if inst.start < cursor:  # overlapping report: show what was reported first, skip the clash
            continue
        if inst.start > cursor:
            segments.append(Segment((inst.start - cursor) * SLICE_WIDTH, "free", "", "free"))
        if inst.state in ("used", "idle"):
            bottom = inst.job or "idle"
        else:
            bottom = f"{inst.state} {inst.job or ''}".strip()
        segments.append(Segment(inst.size * SLICE_WIDTH, inst.profile, bottom, inst.state))
        cursor = inst.start + inst.size
    total = gpu.memory_slices or cursor
    if total > cursor:
        segments.append(Segment((total - cursor) * SLICE_WIDTH, "free", "", "free"))
    return segments


def share_segments(gpu: GpuView) -> list[Segment]:
    """Fractions in proportion to their shares, then the free remainder; a whole-GPU job fills it.

    A cell too narrow for its job's name shows the job's number in `fraction_table` instead, and
    its share or nothing below it: a label is never cut, so four or more small shares stay readable.
    """
    if gpu.whole_job:
        return [Segment(BAR_WIDTH, "whole GPU", gpu.whole_job, "used")]
    segments = []
    used = 0
    for number, fraction in enumerate(_fractions(gpu), 1):
        key = str(number)
        width = max(len(key) + 1, round(fraction.share_milli * BAR_WIDTH / MILLI))
        share = f"{fraction.share_milli / MILLI:g}"
        detail = f"{share} · {_fraction_memory(gpu, fraction)} MiB"
        segments.append(Segment(width, _fitting(width, fraction.job, key), _fitting(width, detail, share, ""), "used"))
        used += fraction.share_milli
    if used < MILLI:
        width = max(2, BAR_WIDTH - sum(s.width for s in segments))
        free = f"{(MILLI - used) / MILLI:g}"
        segments.append(Segment(width, _fitting(width, "free", ""), _fitting(width, free, ""), "free"))
    return segments


def _fractions(gpu: GpuView) -> list:
    return sorted(gpu.fractions, key=lambda f: f.job)


def _fraction_memory(gpu: GpuView, fraction) -> int:
    return gpu.memory_mib * fraction.share_milli // MILLI


def _fitting(width: int, *labels: str) -> str:
    """The first label that fits a cell `width` wide (its border takes one character)."""
    return next((label for label in labels if len(label) <= width - 1), labels[-1])


def fraction_table(gpu: GpuView) -> TextTable:
    """Who shares the GPU: the numbers of the bar's cells, each job's share and memory."""
    table = TextTable(("GPU", "CELL", "SHARE", "MEMORY", "JOB"))
    for number, fraction in enumerate(_fractions(gpu), 1):
        table.add_row(str(gpu.index), str(number), f"{fraction.share_milli / MILLI:g}",
                      f"{_fraction_memory(gpu, fraction)} MiB", fraction.job)
    return table


def _fit(text: str, width: int) -> str:
    if len(text) <= width:
        return text.ljust(width)
    return text[: max(0, width - 1)] + "…" if width > 0 else ""


def draw_bar(segments: list[Segment], ruler: int = 0) -> list[Text]:
    """Box-drawn bar; with `ruler` > 0 a line of slice numbers above it."""
    from rich.text import Text

    lines: list[Text] = []
    if ruler:
        lines.append(Text("".join(str(i).ljust(SLICE_WIDTH) for i in range(ruler)), style="dim"))
    top, mid1, mid2, bottom = Text("┌"), Text("│"), Text("│"), Text("└")
    for position, segment in enumerate(segments):
        inner = segment.width - 1
        last = position == len(segments) - 1
        style = STYLE.get(segment.state, "")
        top.append("─" * inner + ("┐" if last else "┬"))
        bottom.append("─" * inner + ("┘" if last else "┴"))
        for line, label in ((mid1, segment.top), (mid2, segment.bottom)):
            text = _fit(label, inner)
            if segment.state == "free":  # shaded, so free room reads as free without colour
                text = text.replace(" ", "░")
            line.append(text, style)
            line.append("│")
    return [*lines, top, mid1, mid2, bottom]


def gpu_heading(gpu: GpuView) -> Text:
    from rich.text import Text

    parts = [f"{gpu.memory_mib} MiB"]
    if gpu.dynamic_mig:
        parts.append("dynamic MIG")
    elif gpu.mig_enabled:
        parts.append("MIG mode on")
    if gpu.enforcement:
        parts.append(f"enforcement {display_enforcement(gpu.enforcement)}")
    heading = Text.assemble((f"GPU {gpu.index}", "bold"), "  ", (gpu.model, "bold"), "  " + " · ".join(parts))
    if gpu.simulated:
        heading.append("  [simulated]", style="magenta")
    heading.append(f"\n{gpu.uuid}", style="dim")
    return heading


def _profile_memory(model: str, profile: str) -> str:
    from ..errors import UserError
    from ..gpu.catalog import default_catalog

    found = default_catalog().find(model)
    try:
        return f"{found.profile(profile).memory_mib} MiB" if found else "-"
    except UserError:
        return "-"


def mig_device_table(gpu: GpuView) -> TextTable:
    table = TextTable(("GPU", "MEMORY SLICES", "PROFILE", "MEMORY", "STATE", "JOB", "MIG DEVICE"))
    for inst in sorted(gpu.mig_instances, key=lambda m: m.start):
        table.add_row(str(gpu.index), slice_span(inst.start, inst.size), inst.profile,
                      _profile_memory(gpu.model, inst.profile), inst.state, inst.job or "-", inst.uuid or "-")
    return table


def gpu_view(gpu: GpuView) -> list[RenderableType]:
    shows_mig = gpu.dynamic_mig or gpu.mig_enabled or bool(gpu.mig_instances)
    parts: list[RenderableType] = [gpu_heading(gpu)]
    if shows_mig:
        parts += draw_bar(mig_segments(gpu), ruler=gpu.memory_slices)
        if gpu.mig_instances:
            parts.append(mig_device_table(gpu))
    else:
        parts += draw_bar(share_segments(gpu))
        if gpu.fractions:
            parts.append(fraction_table(gpu))
    return parts


def node_view(node: NodeView) -> RenderableType:
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    simulated = bool(node.gpus) and all(g.simulated for g in node.gpus)
    title = Text.assemble(("Node ", "bold"), (node.name, "bold cyan"),
                          f"  {len(node.gpus)} GPU{'s' if len(node.gpus) != 1 else ''}")
    if simulated:
        title.append("  (simulated)", style="magenta")
    body: list[RenderableType] = [title]
    if not node.gpus:
        body.append(Text("  no GPUs", style="dim"))
    for gpu in node.gpus:
        body.append(Padding(Group(*gpu_view(gpu)), (1, 0, 0, 2)))
    body.extend(Text(f"  not used here: {note}", style="yellow") for note in node.notes)
    return Group(*body, Text(""))
