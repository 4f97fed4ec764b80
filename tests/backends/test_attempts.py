"""A job's attempts as both backends show them: the separator line, reading one attempt's output
back from the whole log, how attempts are counted, and the retry delays."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runai_lite.backends.attempts import SEPARATOR, Attempt, AttemptEnd, attempt_lines, counts, separator
from runai_lite.backends.local.daemon.settings import DaemonSettings


@pytest.mark.parametrize(("previous", "line"), [
    (Attempt(number=1, outcome=AttemptEnd.FAILED, exit_code=3), "--- attempt 2 (exit code 3) ---"),
    (Attempt(number=1, outcome=AttemptEnd.PREEMPTED, exit_code=143), "--- attempt 2 (preempted) ---"),
    (Attempt(number=1, outcome=AttemptEnd.SUSPENDED, exit_code=143), "--- attempt 2 (suspended, then resumed) ---"),
    (Attempt(number=1, outcome=AttemptEnd.UNKNOWN), "--- attempt 2 (ended, how is not known) ---"),
    (None, "--- attempt 2 (restarted) ---"),
])
def test_the_separator_says_how_the_attempt_before_ended(previous, line):
    assert separator(2, previous) == line
    assert SEPARATOR.match(line)


LOG = ["a", "b", "--- attempt 2 (exit code 3) ---", "c", "--- attempt 3 (preempted) ---", "d", "e"]


@pytest.mark.parametrize(("number", "lines"), [(1, ["a", "b"]), (2, ["c"]), (3, ["d", "e"]), (4, [])])
def test_one_attempts_lines_are_those_between_its_separators(number, lines):
    assert list(attempt_lines(LOG, number)) == lines


def test_a_separator_trimmed_out_of_a_long_log_leaves_that_attempt_empty_not_the_others_wrong():
    trimmed = ["a", "[runai-lite: 100 bytes of output dropped here]", "--- attempt 3 (exit code 1) ---", "d"]
    assert list(attempt_lines(trimmed, 2)) == []
    assert list(attempt_lines(trimmed, 3)) == ["d"]


def test_a_line_naming_an_earlier_attempt_is_output_not_a_separator():
    log = ["--- attempt 2 (x) ---", "b", "--- attempt 2 (x) ---", "c"]
    assert list(attempt_lines(log, 2)) == ["b", "--- attempt 2 (x) ---", "c"]


plain_line = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=20).filter(
    lambda line: not SEPARATOR.match(line))


@given(st.lists(st.lists(plain_line, max_size=5), min_size=1, max_size=6))
def test_splitting_a_joined_log_gives_back_every_attempts_lines(outputs):
    log = []
    for number, lines in enumerate(outputs, start=1):
        if number > 1:
            log.append(separator(number, Attempt(number=number - 1, outcome=AttemptEnd.FAILED, exit_code=1)))
        log += lines
    for number, lines in enumerate(outputs, start=1):
        assert list(attempt_lines(log, number)) == lines


def test_counts_leave_out_the_running_attempt():
    history = [Attempt(number=1, outcome=AttemptEnd.FAILED, exit_code=2),
               Attempt(number=2, outcome=AttemptEnd.PREEMPTED), Attempt(number=3)]
    assert counts(history) == {AttemptEnd.FAILED: 1, AttemptEnd.PREEMPTED: 1}


@pytest.mark.parametrize(("failures", "delay"), [(1, 10), (2, 20), (3, 40), (5, 160), (6, 320), (7, 360), (60, 360)])
def test_retry_delays_double_from_10_s_up_to_6_minutes(failures, delay):
    assert DaemonSettings().retry_delay(failures) == delay


def test_retry_delays_come_from_the_store_config():
    settings = DaemonSettings.from_config({"retry_backoff_seconds": 0.5, "retry_backoff_max_seconds": 1.5}, {})
    assert [settings.retry_delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 1.5]
