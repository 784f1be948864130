#!/usr/bin/env python3
"""Sends logs and metrics to Sextant with the OpenTelemetry Python SDK's own OTLP
exporters (a real client, as users run it), for the end-to-end tests.

    otlp_client.py logs    http|grpc ENDPOINT RUN_ID COUNT
    otlp_client.py metrics http|grpc ENDPOINT RUN_ID

Logs: COUNT records "otel line <RUN_ID> <i>" with severity WARN and an attribute,
from service "otel-test-<protocol>". Metrics: a counter, an up-down counter, a
histogram and a gauge, from the same service. Exits non-zero if an export fails.
"""

import logging
import sys

from opentelemetry.sdk.resources import Resource


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

    class Checked:
        def export(self, batch):
            r = exporter.export(batch)
            results.append(r)
            return r

        def shutdown(self):
            exporter.shutdown()

        def force_flush(self, timeout_millis=30000):
            return True

    provider.add_log_record_processor(SimpleLogRecordProcessor(Checked()))
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


def main():
    signal, protocol, endpoint, run_id = sys.argv[1:5]
    if signal == "logs":
        send_logs(protocol, endpoint, run_id, int(sys.argv[5]))
    else:
        send_metrics(protocol, endpoint, run_id)


if __name__ == "__main__":
    main()
