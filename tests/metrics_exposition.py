"""Reading a live /metrics answer in tests: one parser for every metrics test."""

import requests
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str, **kwargs) -> dict[str, list]:
    """Sample name -> [(labels, value)] from the /metrics answer of the server at `url`."""
    response = requests.get(f"{url}/metrics", timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def total(samples, name, **labels) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(
        value
        for sample_labels, value in samples.get(name, [])
        if all(sample_labels.get(k) == v for k, v in labels.items())
    )
