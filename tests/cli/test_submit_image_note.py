"""Without docker or podman the command runs directly: `runai submit` says so once, on stderr."""

from __future__ import annotations

from typer.testing import CliRunner

from runai_lite.backends.api import Event, JobInfo
from runai_lite.cli.config import CliConfig
from runai_lite.cli.runai import app
from runai_lite.cli.session import CliSession
from runai_lite.model import JobSpec
from tests.cli.fake_backend import FakeBackend

NOTE = "no docker or podman is usable here: the image is not used; the command after -- runs directly"


class NoRuntimeBackend(FakeBackend):
    def submit(self, spec: JobSpec) -> JobInfo:
        job = super().submit(spec)
        return job.model_copy(update={"events": (Event(time=self.now, kind="ImageNotUsed", message=NOTE),)})


def _submit(backend: FakeBackend, monkeypatch, tmp_path):
    monkeypatch.setenv("RUNAI_LITE_HOME", str(tmp_path / "home"))
    return CliRunner().invoke(app, ["submit", "a", "-i", "img", "--", "true"],
                              obj=CliSession(backend=backend, config=CliConfig(project="team-a")))


def test_submit_notes_that_the_image_is_not_used(monkeypatch, tmp_path):
    result = _submit(NoRuntimeBackend(), monkeypatch, tmp_path)
    assert result.exit_code == 0
    assert result.stderr.count(NOTE) == 1
    assert "submitted successfully" in result.stdout


def test_no_note_when_the_image_is_used(monkeypatch, tmp_path):
    result = _submit(FakeBackend(), monkeypatch, tmp_path)
    assert result.exit_code == 0 and "Note:" not in result.output
