"""The fault bench's reading of the web's own time per page (bench/server_times.py): the
request histograms of a real /metrics answer, the difference between two readings, and
quantiles estimated within their buckets as Prometheus's histogram_quantile does."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from bench import server_times

INF = float("inf")


@pytest.mark.django_db
def test_it_reads_the_requests_of_each_view_between_two_scrapes(settings):
    settings.METRICS_TOKEN = ""
    c = Client()
    before = server_times.page_histograms(c.get(reverse("metrics")).content.decode())
    for _ in range(3):
        c.get(reverse("healthz"))
    after = server_times.page_histograms(c.get(reverse("metrics")).content.decode())
    served = server_times.difference(after, before)
    assert server_times.count(served["healthz"]) == 3
    assert served["healthz"][INF] == 3 and served["healthz"][10.0] == 3  # no healthz takes 10 s
    assert server_times.quantile(0.95, served["healthz"]) is not None


def test_it_estimates_a_quantile_within_its_bucket():
    buckets = {0.01: 10.0, 0.1: 90.0, 1.0: 100.0, INF: 100.0}
    assert server_times.quantile(0.05, buckets) == pytest.approx(0.005)  # 5 of the first 10, from 0
    assert server_times.quantile(0.5, buckets) == pytest.approx(0.01 + 0.09 * 40 / 80)
    assert server_times.quantile(0.95, buckets) == pytest.approx(0.1 + 0.9 * 5 / 10)
    assert server_times.quantile(0.99, {0.5: 1.0, 1.0: 1.0, INF: 4.0}) == 1.0  # past the last bound: that bound
    assert server_times.quantile(0.5, {0.5: 0.0, INF: 0.0}) is None


def test_it_sums_the_views_of_a_kind_of_page():
    total = server_times.merged([{0.1: 1.0, INF: 2.0}, {0.1: 3.0, INF: 3.0}])
    assert total == {0.1: 4.0, INF: 5.0}
