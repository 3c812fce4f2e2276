"""The Prometheus source: PromQL built from the selector, and HTTP API answers read into the same counters."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from tests.harness import loopback

from specdeploy.monitor.acceptance import summarize
from specdeploy.monitor.prometheus_source import (
    MAX_ANSWER_BYTES,
    MAX_RESULT_SAMPLES,
    PodSelector,
    PrometheusQueryError,
    build_queries,
    counters_from_results,
    parse_vector,
    query_window,
)
from specdeploy.monitor.scrape import new_session

SELECTOR = PodSelector(labels=(("namespace", "llm"),), pods=("codellama-70b-7f9c-abcde", "codellama-70b-7f9c-fghij"))


def test_queries_sum_increases_over_the_window_for_the_selected_pods() -> None:
    queries = build_queries(SELECTOR, 300)
    sel = '{namespace="llm",pod=~"codellama-70b-7f9c-abcde|codellama-70b-7f9c-fghij"}'
    assert queries == {
        "drafts": f"sum(increase(vllm:spec_decode_num_drafts_total{sel}[300s]))",
        "draft_tokens": f"sum(increase(vllm:spec_decode_num_draft_tokens_total{sel}[300s]))",
        "accepted_tokens": f"sum(increase(vllm:spec_decode_num_accepted_tokens_total{sel}[300s]))",
        "per_position": f"sum by (position) (increase(vllm:spec_decode_num_accepted_tokens_per_pos_total{sel}[300s]))",
        "v0_rate": f"avg(vllm:spec_decode_draft_acceptance_rate{sel})",
    }
    assert build_queries(PodSelector(labels=(("specdeploy_io_name", "x"),)), 1.5)["drafts"].endswith("[1500ms]))")


def test_selector_escapes_values_and_regex_characters() -> None:
    selector = PodSelector(labels=(("model_name", 'a"b\\c'),), pods=("pod.with.dots",), pod_label="kubernetes_pod_name")
    assert selector.matchers() == '{model_name="a\\"b\\\\c",kubernetes_pod_name=~"pod\\\\.with\\\\.dots"}'
    with pytest.raises(ValueError, match="invalid Prometheus label name"):
        PodSelector(labels=(("bad-name", "x"),)).matchers()
    with pytest.raises(ValueError, match="window_seconds"):
        build_queries(SELECTOR, 0)


def vector(*rows: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": m, "value": [1.8e9, v]} for m, v in rows]},
    }


def test_response_parsing_and_errors() -> None:
    assert parse_vector(vector(({}, "12.5"))) == [({}, 12.5)]
    error = {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}
    with pytest.raises(PrometheusQueryError, match="bad_data: parse error at char 5"):
        parse_vector(error, "sum(x")
    with pytest.raises(PrometheusQueryError, match="not an instant vector"):
        parse_vector({"status": "success", "data": {"resultType": "matrix", "result": []}})
    with pytest.raises(PrometheusQueryError, match="non-numeric"):
        parse_vector(vector(({}, "many")))
    with pytest.raises(PrometheusQueryError, match="malformed sample"):
        parse_vector({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}})
    with pytest.raises(PrometheusQueryError, match="not a JSON object"):
        parse_vector([])


def test_counters_from_results() -> None:
    results: dict[str, list[tuple[dict[str, str], float]]] = {
        "drafts": [({}, 1000.0)],
        "draft_tokens": [({}, 4000.0)],
        "accepted_tokens": [({}, 2190.0)],
        "per_position": [({"position": "1"}, 600.0), ({"position": "0"}, 780.0)],
        "v0_rate": [],
    }
    counters = counters_from_results(results)
    assert counters is not None
    acceptance = summarize(counters)
    assert acceptance.rate == pytest.approx(0.5475)
    assert acceptance.per_position == (0.78, 0.6)
    empty: dict[str, list[tuple[dict[str, str], float]]] = {k: [] for k in results}
    assert counters_from_results(empty) is None
    v0 = counters_from_results({**empty, "v0_rate": [({}, 0.56)]})
    assert v0 is not None and summarize(v0).rate == 0.56 and v0.engine == "v0"
    with pytest.raises(PrometheusQueryError, match="no draft_tokens"):
        counters_from_results({**results, "draft_tokens": []})
    with pytest.raises(PrometheusQueryError, match="drafts"):
        counters_from_results({**results, "drafts": [({}, float("nan"))]})


class FakePrometheus:
    """Answers /api/v1/query from a table of query -> JSON body, and records what was asked."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.asked: list[dict[str, str]] = []
        self.base = ""

    async def query(self, request: web.Request) -> web.Response:
        self.asked.append(dict(request.query))
        answer = self.answers.get(request.query.get("query", ""))
        if answer is None:
            return web.json_response({"status": "error", "errorType": "bad_data", "error": "unknown"}, status=400)
        if isinstance(answer, str):
            return web.Response(text=answer, status=503)
        return web.json_response(answer)


@pytest.fixture
async def prometheus() -> AsyncIterator[FakePrometheus]:
    fake = FakePrometheus()
    app = web.Application()
    app.add_routes([web.get("/api/v1/query", fake.query)])
    async with loopback.serving(app) as url:
        fake.base = f"{url}/"
        yield fake


async def test_query_window_against_a_prometheus_shaped_server(prometheus: FakePrometheus) -> None:
    queries = build_queries(SELECTOR, 300)
    prometheus.answers = {
        queries["drafts"]: vector(({}, "1000")),
        queries["draft_tokens"]: vector(({}, "4000")),
        queries["accepted_tokens"]: vector(({}, "1200.5")),
        queries["per_position"]: vector(({"position": "0"}, "700"), ({"position": "1"}, "500.5")),
        queries["v0_rate"]: vector(),
    }
    async with aiohttp.ClientSession() as session:
        counters = await query_window(session, prometheus.base, SELECTOR, 300, at=1_800_000_000.0)
    assert counters is not None and counters.engine == "v1"
    assert summarize(counters).rate == pytest.approx(1200.5 / 4000)
    assert summarize(counters).per_position == (0.7, 0.5005)
    assert len(prometheus.asked) == 5
    assert all(a["time"] == "1800000000.000" for a in prometheus.asked)


async def test_query_window_errors_name_the_endpoint(prometheus: FakePrometheus) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PrometheusQueryError, match="bad_data: unknown"):
            await query_window(session, prometheus.base, SELECTOR, 300)
        prometheus.answers = dict.fromkeys(build_queries(SELECTOR, 300).values(), "<html>overloaded</html>")
        with pytest.raises(PrometheusQueryError, match=r"api/v1/query: HTTP 503, body is not JSON"):
            await query_window(session, prometheus.base, SELECTOR, 300)


class HostilePrometheus:
    """A Prometheus URL that redirects, answers too much, or answers with a gzip bomb."""

    def __init__(self) -> None:
        self.base = ""
        self.followed = 0

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere/api/v1/query")

    async def elsewhere(self, request: web.Request) -> web.Response:
        self.followed += 1
        return web.json_response(vector(({}, "1")))

    async def huge(self, request: web.Request) -> web.Response:
        padding = "x" * (MAX_ANSWER_BYTES + 1)
        return web.json_response({**vector(({}, "1")), "padding": padding})

    async def bomb(self, request: web.Request) -> web.Response:
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        body = b"".join([packer.compress(b" " * (1024 * 1024)) for _ in range(64)]) + packer.flush()
        return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    async def many(self, request: web.Request) -> web.Response:
        rows = [({"position": str(i)}, "1") for i in range(MAX_RESULT_SAMPLES + 1)]
        return web.json_response(vector(*rows))


@pytest.fixture
async def hostile() -> AsyncIterator[HostilePrometheus]:
    fake = HostilePrometheus()
    app = web.Application()
    for prefix, handler in [
        ("redirect", fake.redirect),
        ("elsewhere", fake.elsewhere),
        ("huge", fake.huge),
        ("bomb", fake.bomb),
        ("many", fake.many),
    ]:
        app.router.add_get(f"/{prefix}/api/v1/query", handler)
    async with loopback.serving(app) as url:
        fake.base = url
        yield fake


@pytest.mark.parametrize(
    ("prefix", "words"),
    [
        ("redirect", r"HTTP 302 redirect to '/elsewhere/api/v1/query' refused"),
        ("huge", f"exceeds {MAX_ANSWER_BYTES} bytes"),
        ("bomb", f"body exceeds {MAX_ANSWER_BYTES} bytes once decompressed"),
        ("many", f"more than {MAX_RESULT_SAMPLES}"),
    ],
)
async def test_hostile_prometheus_answers_are_refused_with_a_reason(
    hostile: HostilePrometheus, prefix: str, words: str
) -> None:
    """Issue 11: answers were read whole, redirects followed and gzip inflated without a cap."""
    async with new_session(limit=8) as session:
        with pytest.raises(PrometheusQueryError, match=words):
            await query_window(session, f"{hostile.base}/{prefix}/", SELECTOR, 300)
    assert hostile.followed == 0


# ----------------------------------------------------------------------------------------- speed (issue 14)
def test_speed_queries_take_sums_and_counts_never_buckets() -> None:
    from specdeploy.monitor.prometheus_source import build_speed_queries

    queries = build_speed_queries(SELECTOR, 60)
    sel = '{namespace="llm",pod=~"codellama-70b-7f9c-abcde|codellama-70b-7f9c-fghij"}'
    assert queries["vllm:request_time_per_output_token_seconds_sum"] == (
        f"sum(increase(vllm:request_time_per_output_token_seconds_sum{sel}[60s]))"
    )
    assert queries["vllm:generation_tokens_total"] == f"sum(increase(vllm:generation_tokens_total{sel}[60s]))"
    assert queries["vllm:num_requests_running"] == (
        f"avg(sum by (pod) (avg_over_time(vllm:num_requests_running{sel}[60s])))"
    )
    assert not any("_bucket" in q for q in queries.values())


async def test_query_speed_against_a_prometheus_shaped_server(prometheus: FakePrometheus) -> None:
    from specdeploy.monitor.prometheus_source import build_speed_queries, query_speed

    queries = build_speed_queries(SELECTOR, 60)
    prometheus.answers = {q: vector() for q in queries.values()}
    prometheus.answers |= {
        queries["vllm:request_time_per_output_token_seconds_sum"]: vector(({}, "0.3")),
        queries["vllm:request_time_per_output_token_seconds_count"]: vector(({}, "12")),
        queries["vllm:generation_tokens_total"]: vector(({}, "3000")),
        queries["vllm:num_requests_running"]: vector(({}, "2.5")),
    }
    async with aiohttp.ClientSession() as session:
        speed = await query_speed(session, prometheus.base, SELECTOR, 60, at=1_800_000_000.0)
        assert speed is not None
        assert speed.request_tpot_seconds == pytest.approx(0.025) and speed.requests == 12
        assert speed.inter_token_seconds is None
        assert speed.tokens_per_second == pytest.approx(50.0) and speed.output_tokens == 3000
        assert speed.running_requests == 2.5 and speed.pods == 2
        prometheus.answers = {q: vector() for q in queries.values()}
        assert await query_speed(session, prometheus.base, SELECTOR, 60) is None, "no speed series: no speed"
