"""Reading a scrape as Prometheus does: the text format parsed by prometheus_client's parser."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    """Sample name -> {labels: value} (counters under their `_total` name)."""
    found: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return found


def value(scraped: dict, name: str, **labels: str) -> float:
    """The sum over the series of `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for key, v in scraped.get(name, {}).items() if wanted <= key)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
