"""Ships N lines through python-logging-loki (PyPI), a real Loki client that
pushes JSON and requires 204. Usage: python_logging_loki.py PUSH_URL N TAG.
Exits 1 if any push failed."""

import logging
import sys

import logging_loki

url, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
handler = logging_loki.LokiHandler(url=url, tags={"app": "python-logging-loki"}, version="1")
failures = []
# logging swallows handler errors (prints them); record them so a refused push fails the run.
handler.handleError = lambda record: failures.append(sys.exc_info()[1])
log = logging.getLogger("checkout")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(handler)
for i in range(n):
    log.warning('%s line %d "quoted" \\ back, comma', tag, i)
if failures:
    print(f"{len(failures)} pushes failed, first: {failures[0]!r}", file=sys.stderr)
    sys.exit(1)
