"""The pure parts of `runai top node`: how a GPU is cut into bar segments, and the age column."""

from __future__ import annotations

from runai_lite.backends.api import FractionView, GpuView, MigInstanceView
from runai_lite.cli.render import age
from runai_lite.model import slice_span
from runai_lite.cli.topview import BAR_WIDTH, SLICE_WIDTH, draw_bar, gpu_view, mig_segments, share_segments


def a100(*instances: MigInstanceView) -> GpuView:
    return GpuView(index=0, uuid="GPU-x", model="A100-SXM4-40GB", memory_mib=40536, dynamic_mig=True,
                   mig_enabled=True, memory_slices=8, mig_instances=instances)


def test_mig_segments_cover_every_slice_with_free_runs_between_instances():
    gpu = a100(MigInstanceView(profile="1g.5gb", start=6, size=1, uuid="MIG-a", state="used", job="p/a"),
               MigInstanceView(profile="2g.10gb", start=2, size=2, uuid=None, state="creating", job="p/b"),
               MigInstanceView(profile="1g.5gb", start=4, size=1, uuid="MIG-c", state="idle"))
    segments = mig_segments(gpu)
    assert [(s.top, s.bottom, s.state) for s in segments] == [
        ("free", "", "free"), ("2g.10gb", "creating p/b", "creating"), ("1g.5gb", "idle", "idle"),
        ("free", "", "free"), ("1g.5gb", "p/a", "used"), ("free", "", "free")]
    assert [s.width // SLICE_WIDTH for s in segments] == [2, 2, 1, 1, 1, 1]


def test_an_empty_dynamic_mig_gpu_is_one_free_run():
    (segment,) = mig_segments(a100())
    assert (segment.state, segment.width) == ("free", 8 * SLICE_WIDTH)


def test_share_segments_fill_the_bar():
    gpu = GpuView(index=1, uuid="GPU-y", model="T4", memory_mib=15360,
                  fractions=(FractionView(job="p/b", share_milli=500), FractionView(job="p/a", share_milli=250)))
    segments = share_segments(gpu)
    assert [(s.top, s.bottom) for s in segments] == [("p/a", "0.25 · 3840 MiB"), ("p/b", "0.5 · 7680 MiB"),
                                                     ("free", "0.25")]
    assert sum(s.width for s in segments) == BAR_WIDTH
    whole = GpuView(index=2, uuid="GPU-z", model="T4", memory_mib=15360, whole_job="p/w")
    assert [(s.top, s.bottom, s.width) for s in share_segments(whole)] == [("whole GPU", "p/w", BAR_WIDTH)]


def test_a_gpu_with_many_fractions_shows_every_share_uncut_and_a_table_of_its_jobs():
    shares = {"team-a/train-long-name": 100, "team-a/b": 250, "team-b/eval": 125, "team-b/notebook-1": 50,
              "team-c/x": 300, "team-c/y": 75}
    gpu = GpuView(index=0, uuid="GPU-y", model="A100-SXM4-40GB", memory_mib=40536,
                  fractions=tuple(FractionView(job=j, share_milli=m) for j, m in shares.items()))
    lines = [line.plain for line in draw_bar(share_segments(gpu))]
    assert len({len(line) for line in lines}) == 1 and "…" not in "".join(lines)
    parts = gpu_view(gpu)
    table = parts[-1].lines()
    assert table[0].split() == ["GPU", "CELL", "SHARE", "MEMORY", "JOB"]
    rows = {row.split()[-1]: row.split() for row in table[1:]}
    assert set(rows) == set(shares)
    for job, milli in shares.items():
        number, share = rows[job][1], rows[job][2]
        assert float(share) == milli / 1000
        assert job in lines[1] or f"{number}" in lines[1]  # the cell shows the job, or its number in the table
    assert rows["team-c/x"][3:5] == [str(40536 * 300 // 1000), "MiB"]


def test_bar_lines_have_equal_width_and_long_labels_are_cut():
    gpu = a100(MigInstanceView(profile="1g.5gb", start=0, size=1, uuid="MIG-a", state="used",
                               job="a-project-with-a-long-name/a-job"))
    lines = [line.plain for line in draw_bar(mig_segments(gpu), ruler=8)]
    assert len({len(line) for line in lines[1:]}) == 1
    assert "a-projec…" in lines[3]


def test_age_and_slice_span():
    assert [age(0, t) for t in (5, 119, 120, 7199, 7200, 2 * 86400)] == ["5s", "119s", "2m", "119m", "2h", "2d"]
    assert age(None, 10) == "-"
    assert (slice_span(4, 1), slice_span(0, 2)) == ("4", "0-1")


def test_text_table_aligns_columns_three_spaces_apart():
    import pytest

    from runai_lite.cli.table import TextTable

    table = TextTable(("NAME", "GPUs"))
    table.add_row("a-long-name", "1")
    table.add_row("b", "0.25 (0.25)")
    assert table.lines() == ["NAME          GPUs", "a-long-name   1", "b             0.25 (0.25)"]
    assert table.lines(bold_header=True)[0] == "\x1b[1mNAME          GPUs\x1b[0m"
    with pytest.raises(ValueError):
        table.add_row("only one")
