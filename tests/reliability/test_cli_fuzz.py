"""Bad input (issue 6 item 4): property-based fuzzing of `runai` and `runai-adm` flags and
arguments through the real Typer apps against a real `LocalBackend` (temporary home, simulated
GPUs, its daemon running). Whatever is typed:

- never a traceback: the command ends with exit code 0, or 2 and a message saying what was wrong;
- a refused command changes nothing a user submitted (jobs and projects as recorded);
- an accepted `submit` records exactly one job, whose name is a DNS-1123 label.

Arguments include what a real command line can carry and a sloppy one does: unicode, undecodable
bytes (which Python hands over as surrogate escapes), huge numbers, NaN, empty strings, flags where
values belong. NUL cannot be in a command-line argument, so it is not generated here (JobSpec
refuses it anyway, for callers of the Python API).
"""

from __future__ import annotations

import string
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from runai_lite.backends.local import LocalBackend, local_init
from runai_lite.backends.local.checks import CHECK_ENV
from runai_lite.cli.config import CliConfig
from runai_lite.cli.runai import app as runai
from runai_lite.cli.runai_adm import app as runai_adm
from runai_lite.cli.session import CliSession
from runai_lite.model import JobSpec, dns1123_problem
from tests.local.conftest import kill_everything

pytestmark = pytest.mark.e2e

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])

# Characters a terminal or a script might pass: printable ASCII, shell-ish punctuation, unicode
# letters and marks, and surrogate escapes (bytes that were not UTF-8).
_ALPHABET = st.one_of(
    st.sampled_from(string.printable),
    st.characters(codec="utf-8", exclude_characters="\x00"),
    st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF),
)
words = st.one_of(st.text(_ALPHABET, max_size=40), st.sampled_from(["\udcff", "caf\udce9", "x" * 5000, " ", "-"]))
valid_names = st.from_regex(r"\A[a-z]([-a-z0-9]{0,20}[a-z0-9])?\Z")
names = st.one_of(valid_names, words, st.text("ab-", min_size=60, max_size=80), st.sampled_from(
    ["", "-x", "A", "a_b", "a.b", "ä", "a" * 63, "a" * 64, "--", "team-a", "1abc", "abc-"]))
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.sampled_from(["0", "0.0", "1", "0.5", "1.5", "1e400", "-0", "nan", "inf", "0x10", "1_000", ".5", ""]),
    words,
)
sizes = st.one_of(st.from_regex(r"\A-?[0-9]{0,25}(\.[0-9]{0,5})?(K|M|G|T|P|E|Ki|Mi|Gi|Ti|KB|MB|GB|TB|b|B)?\Z"),
                  words)
profiles = st.one_of(st.sampled_from(["1g.5gb", "2g.10gb", "3g.20gb", "7g.40gb", "1g.10gb", "9g.90gb", "1G.5GB"]),
                     words)
env_pairs = st.lists(st.one_of(st.builds("{}={}".format, words, words), words), max_size=3)


def _optional(flag: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), values.map(lambda v: [flag, v]))


@st.composite
def submit_args(draw) -> list[str]:
    args = ["submit"]
    if draw(st.booleans()):
        args.append(draw(names))
    args += ["-i", draw(st.one_of(st.just("busybox"), words))]
    request = draw(st.sampled_from(["--gpu", "--gpu-memory", "--mig-profile", None, "both"]))
    if request == "both":
        args += ["--gpu", "0.5", "--mig-profile", "1g.5gb"]
    elif request is not None:
        args += [request, draw({"--gpu": numbers, "--gpu-memory": sizes, "--mig-profile": profiles}[request])]
    args += draw(_optional("-p", names))
    for pair in draw(env_pairs):
        args += ["-e", pair]
    args += draw(_optional("--backoff-limit", numbers))
    args += draw(_optional("--working-dir", st.one_of(st.just("/tmp"), words)))
    args += draw(_optional("--name-prefix", names))
    args += draw(st.sampled_from([[], ["--interactive"], ["--interactive", "--preemptible"], ["--preemptible"],
                                  ["--command"]]))
    if draw(st.booleans()):  # jobs do run: only harmless programs, with fuzzed arguments
        args += ["--", *draw(st.lists(st.sampled_from(["true", "echo", "no-such-program"]), max_size=1)),
                 *draw(st.lists(words, max_size=2))]
    return args


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CHECK_ENV, "1")
        local_init(home, simulate="A100-SXM4-40GB:1:mig-off,T4:1", enforcement="none", grace_seconds=0.5)
        backend = LocalBackend(home)
        backend.create_project("team-a", 1)
        yield backend
        backend.close()
        kill_everything(home)
    broken = home / "invariants.log"
    assert not broken.exists(), broken.read_text()


def _recorded(backend: LocalBackend) -> tuple:
    """What users submitted, as stored (not statuses, which the daemon moves on)."""
    with backend.store.read() as conn:
        jobs = conn.execute("SELECT id, project, name, spec, user FROM jobs ORDER BY id").fetchall()
        projects = conn.execute("SELECT name, deserved_gpus FROM projects ORDER BY name").fetchall()
    return tuple(map(tuple, jobs)), tuple(map(tuple, projects))


def _invoke(app, backend: LocalBackend, args: list[str]):
    result = CliRunner().invoke(app, args, obj=CliSession(backend=backend, config=CliConfig(project="team-a")))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args!r} raised {type(result.exception).__name__}: {result.exception}")
    assert "Traceback" not in result.output, args
    assert result.exit_code in (0, 2), (args, result.exit_code, result.output)
    if result.exit_code == 2:
        assert "Error" in result.output, (args, result.output)  # ours ("Error: ...") or Typer's usage box
    return result


def _refusal_changes_nothing(app, backend: LocalBackend, args: list[str]):
    before = _recorded(backend)
    result = _invoke(app, backend, args)
    after = _recorded(backend)
    if result.exit_code == 2:
        assert after == before, args
    return result, before, after


@FUZZ
@given(args=submit_args())
def test_submit_never_tracebacks_and_a_refusal_changes_nothing(local: LocalBackend, args: list[str]) -> None:
    result, before, after = _refusal_changes_nothing(runai, local, args)
    if result.exit_code == 0:
        (added,) = set(after[0]) - set(before[0])
        assert dns1123_problem(added[2]) is None, added[2]
        assert f"The job '{added[2]}' has been submitted" in result.output


@FUZZ
@given(command=st.sampled_from([["describe", "job"], ["logs"], ["delete", "job"], ["exec"], ["list", "jobs", "-p"],
                                ["logs", "--tail"], ["describe", "job", "-o"]]),
       name=names, extra=st.lists(words, max_size=2))
def test_job_commands_never_traceback_on_any_name(local: LocalBackend, command: list[str], name: str,
                                                  extra: list[str]) -> None:
    # (`runai config project` is left out: it writes the user's real CLI config file.)
    tail = ["--", "true", *extra] if command == ["exec"] else extra
    _refusal_changes_nothing(runai, local, [*command, name, *tail])


@FUZZ
@given(name=names, deserved=numbers)
def test_project_create_never_tracebacks(local: LocalBackend, name: str, deserved: str) -> None:
    result, before, after = _refusal_changes_nothing(runai_adm, local, ["project", "create", name,
                                                                       "--deserved-gpus", deserved])
    if result.exit_code == 0:
        assert dns1123_problem(name) is None
        assert len(after[1]) == len(before[1]) + 1


@pytest.mark.parametrize("field,value", [
    ("command", ("sleep", "1\x00")), ("env", (("A", "b\x00"),)), ("working_dir", "/tmp\x00"), ("image", "bu\x00sy"),
])
def test_job_spec_refuses_nul_which_no_process_could_be_started_with(field: str, value) -> None:
    with pytest.raises(ValueError, match="NUL character"):
        JobSpec(**{"name": "j", "project": "team-a", "image": "busybox", field: value})


@pytest.mark.parametrize("name", ["A", "a_b", "-a", "a-", "ä", "", "a" * 64, "a.b"])
def test_both_modes_refuse_a_job_name_that_is_not_a_dns1123_label(name: str) -> None:
    """Both backends receive a `JobSpec`, which holds the rule (the CLI checks it first for a
    friendlier message)."""
    assert dns1123_problem(name)
    with pytest.raises(ValueError, match="invalid job name"):
        JobSpec(name=name, project="team-a", image="busybox")
    assert JobSpec(name="a" * 63, project="team-a", image="busybox").name == "a" * 63
