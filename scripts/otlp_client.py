#!/usr/bin/env python3
"""Sends logs and metrics to Sextant with the OpenTelemetry Python SDK's own OTLP
exporters (a real client, as users run it), for the end-to-end tests.

    otlp_client.py logs    http|grpc ENDPOINT RUN_ID COUNT
    otlp_client.py metrics http|grpc ENDPOINT RUN_ID
    otlp_client.py traces  http|json|grpc ENDPOINT RUN_ID COUNT

Logs: COUNT records "otel line <RUN_ID> <i>" with severity WARN and an attribute,
from service "otel-test-<protocol>". Metrics: a counter, an up-down counter, a
histogram and a gauge, from the same service. Traces: COUNT requests through a
small instrumented app of two services, "frontend-<protocol>" and
"cart-<protocol>" (server span, client call with the context propagated, the
cart's server span, its Redis call): every 3rd request fails with a 500, every
4th is slow (300 ms); over OTLP/HTTP protobuf, gRPC, or OTLP/HTTP JSON (the
SDK's own encoder, the request then written in OTLP/JSON with hex ids). Prints
one JSON line per request: trace id and what it was. Exits non-zero if an export
fails.
"""

import logging
import sys

from opentelemetry.sdk.resources import Resource


class Checked:
    """An exporter that records each export's result, for the exit status."""

    def __init__(self, exporter, results):
        self.exporter, self.results = exporter, results

    def export(self, batch):
        r = self.exporter.export(batch)
        self.results.append(r)
        return r

    def shutdown(self):
        self.exporter.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def exporters(signal, protocol, endpoint):
    if protocol == "http":
        if signal == "logs":
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

            return OTLPLogExporter(endpoint=endpoint + "/v1/logs")
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=endpoint + "/v1/metrics")
    if signal == "logs":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=endpoint, insecure=True)
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=endpoint, insecure=True)


def send_logs(protocol, endpoint, run_id, count):
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    resource = Resource.create({"service.name": f"otel-test-{protocol}", "k8s.namespace.name": "shop", "host.name": "h1"})
    provider = LoggerProvider(resource=resource)
    exporter = exporters("logs", protocol, endpoint)
    results = []

    provider.add_log_record_processor(SimpleLogRecordProcessor(Checked(exporter, results)))
    handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    log = logging.getLogger(f"otel-test-{protocol}")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(handler)
    for i in range(count):
        log.warning("otel line %s %d", run_id, i, extra={"test.index": i})
    provider.shutdown()
    failed = [r for r in results if r.name != "SUCCESS"]
    if failed or len(results) != count:
        sys.exit(f"{len(failed)} of {len(results)} exports failed")


def send_metrics(protocol, endpoint, run_id):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.metrics import Observation

    resource = Resource.create({"service.name": f"otel-test-{protocol}", "service.instance.id": run_id, "host.name": "h1"})
    reader = PeriodicExportingMetricReader(exporters("metrics", protocol, endpoint), export_interval_millis=3_600_000)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("sextant.test", "1.0")
    requests = meter.create_counter("http.server.requests", unit="{request}", description="Requests served")
    requests.add(5, {"http.request.method": "GET"})
    requests.add(2, {"http.request.method": "POST"})
    inflight = meter.create_up_down_counter("http.server.active_requests", unit="{request}")
    inflight.add(3)
    duration = meter.create_histogram("http.server.request.duration", unit="s")
    for v in (0.004, 0.03, 0.2, 0.7, 3.0):
        duration.record(v, {"http.request.method": "GET"})
    meter.create_observable_gauge(
        "system.cpu.utilization", callbacks=[lambda _options: [Observation(0.25, {"cpu": "0"})]], unit="1"
    )
    ok = reader.force_flush(timeout_millis=20_000)
    provider.shutdown()
    if not ok:
        sys.exit("metrics export failed")


class JsonSpanExporter:
    """OTLP/HTTP JSON: the SDK's protobuf encoding of the batch, written in
    OTLP/JSON (ids in hex, as the specification requires) and posted."""

    def __init__(self, endpoint):
        self.endpoint = endpoint

    def export(self, spans):
        import base64
        import json
        import urllib.request

        from google.protobuf.json_format import MessageToDict
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
        from opentelemetry.sdk.trace.export import SpanExportResult

        body = MessageToDict(encode_spans(spans))

        def hexify(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                        node[k] = base64.b64decode(v).hex()
                    else:
                        hexify(v)
            elif isinstance(node, list):
                for v in node:
                    hexify(v)

        hexify(body)
        req = urllib.request.Request(
            self.endpoint, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return SpanExportResult.SUCCESS if r.status == 200 else SpanExportResult.FAILURE

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


def span_exporter(protocol, endpoint):
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint + "/v1/traces")
    if protocol == "json":
        return JsonSpanExporter(endpoint + "/v1/traces")
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint, insecure=True)


def send_traces(protocol, endpoint, run_id, count):
    import json
    import time

    from opentelemetry import propagate, trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    results = []
    exporter = span_exporter(protocol, endpoint)

    def provider(service):
        p = TracerProvider(resource=Resource.create({"service.name": f"{service}-{protocol}", "k8s.namespace.name": "shop"}))
        p.add_span_processor(SimpleSpanProcessor(Checked(exporter, results)))
        return p

    front_p, cart_p = provider("frontend"), provider("cart")
    front, cart = front_p.get_tracer("sample.frontend", "1.0"), cart_p.get_tracer("sample.cart", "1.0")
    base = time.time_ns() - count * 1_000_000_000
    for i in range(count):
        failed, slow = i % 3 == 2, i % 4 == 3
        t0 = base + i * 1_000_000_000
        work = 300_000_000 if slow else 20_000_000
        with front.start_as_current_span(
            "GET /cart", kind=SpanKind.SERVER, start_time=t0, end_on_exit=False,
            attributes={"http.request.method": "GET", "http.route": "/cart", "run.id": run_id, "request.index": i},
        ) as root:
            with front.start_as_current_span("GET", kind=SpanKind.CLIENT, start_time=t0 + 1_000_000, end_on_exit=False) as call:
                headers = {}
                propagate.inject(headers)
                ctx = propagate.extract(headers)
                srv = cart.start_span("GET /items", kind=SpanKind.SERVER, context=ctx, start_time=t0 + 2_000_000,
                                      attributes={"http.request.method": "GET", "http.route": "/items"})
                with trace.use_span(srv, end_on_exit=False):
                    db = cart.start_span("redis GET", kind=SpanKind.CLIENT, start_time=t0 + 3_000_000,
                                         attributes={"db.system": "redis", "peer.service": "redis"})
                    db.end(end_time=t0 + 3_000_000 + work)
                status = 500 if failed else 200
                srv.set_attribute("http.response.status_code", status)
                if failed:
                    srv.set_status(Status(StatusCode.ERROR, "cart failed"))
                srv.end(end_time=t0 + 4_000_000 + work)
                call.set_attribute("http.response.status_code", status)
                if failed:
                    call.set_status(Status(StatusCode.ERROR))
                call.end(end_time=t0 + 5_000_000 + work)
            root.set_attribute("http.response.status_code", status)
            if failed:
                root.set_status(Status(StatusCode.ERROR))
            root.end(end_time=t0 + 6_000_000 + work)
            trace_id = format(root.get_span_context().trace_id, "032x")
        print(json.dumps({"trace_id": trace_id, "failed": failed, "slow": slow}))
    front_p.shutdown()
    cart_p.shutdown()
    failed = [r for r in results if r.name != "SUCCESS"]
    if failed or len(results) != count * 4:
        sys.exit(f"{len(failed)} of {len(results)} exports failed")


def main():
    signal, protocol, endpoint, run_id = sys.argv[1:5]
    if signal == "logs":
        send_logs(protocol, endpoint, run_id, int(sys.argv[5]))
    elif signal == "traces":
        send_traces(protocol, endpoint, run_id, int(sys.argv[5]))
    else:
        send_metrics(protocol, endpoint, run_id)


if __name__ == "__main__":
    main()
