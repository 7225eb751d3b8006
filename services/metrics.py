"""This process's Prometheus metrics (prometheus-client): every definition lives here; `GET /metrics` serves them.

The rest of the code only calls the small functions below at the point where an outcome is known (a key verified,
a sign-in decided, a mail handed over). Labels take values from fixed sets only: a route template, never a raw path,
and never an email, a key, a token or an address. Each process counts its own requests; with several processes,
Prometheus scrapes each one (README, `Monitoring`).
"""

from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from itertools import accumulate

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from models.audit import AuditAction
from services.errors import LoginLocked

CONTENT_TYPE = CONTENT_TYPE_LATEST
disable_created_metrics()  # no `_created` twin beside every counter: half the scrape, nothing a dashboard needs


class KeyVerification(StrEnum):
    OK = 'ok'  # the organization's active key
    GRACE = 'grace'  # an old key inside its rotation grace window
    INVALID = 'invalid'  # missing, unknown, rotated away or expired


class SignInMethod(StrEnum):
    PASSWORD = 'password'
    PASSKEY = 'passkey'
    SSO = 'sso'


class SignInResult(StrEnum):
    OK = 'ok'
    FAILED = 'failed'
    LOCKED = 'locked'  # refused before checking: too many failed attempts


class MailResult(StrEnum):
    SENT = 'sent'
    FAILED = 'failed'


# The methods a route can have; anything else a client sends is counted as `other` (a label set a client cannot grow).
HTTP_METHODS = frozenset({'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'})
UNMATCHED_ROUTE = 'unmatched'  # no route answered (an unknown page, a made-up /api/ path)

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _HotPathCounts:
    """Request counts, durations and key checks, kept as plain integers and turned into Prometheus metrics only when
    scraped.

    prometheus-client's Counter and Histogram take a lock on every increment, which cost the widget API several
    percent of its throughput (bench/api_throughput.py --metrics-on-off). These are only ever changed on the event
    loop's thread (the HTTP middleware, the widget route after its lookup), so no lock is needed.
    """

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.durations: dict[str, tuple[list[int], list[float]]] = {}  # route -> (count per bucket, [sum])
        self.keys: dict[str, int] = {}

    def record_request(self, route: str, method: str, status: int, duration: float) -> None:
        key = (route, method, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        timing = self.durations.get(route)
        if timing is None:
            timing = self.durations[route] = ([0] * (len(DURATION_BUCKETS) + 1), [0.0])
        timing[0][bisect_left(DURATION_BUCKETS, duration)] += 1
        timing[1][0] += duration

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            'cxt_http_requests',
            'HTTP requests answered, by route template (never the raw path), method and status.',
            labels=['route', 'method', 'status'],
        )
        for (route, method, status), count in list(self.requests.items()):
            requests.add_metric([route, method, str(status)], count)
        yield requests
        durations = HistogramMetricFamily(
            'cxt_http_request_duration_seconds',
            'Time from the request to the end of its response, by route template.',
            labels=['route'],
        )
        for route, (counts, total) in list(self.durations.items()):
            cumulative = list(accumulate(counts))
            bounds = [*(str(bound) for bound in DURATION_BUCKETS), '+Inf']
            durations.add_metric([route], list(zip(bounds, cumulative, strict=True)), total[0])
        yield durations
        keys = CounterMetricFamily(
            'cxt_api_key_verifications',
            'Widget API keys presented: ok (the active key), grace (an old key in its grace window), invalid.',
            labels=['result'],
        )
        for result in KeyVerification:
            keys.add_metric([result.value], self.keys.get(result, 0))
        yield keys


hot_path = _HotPathCounts()
REGISTRY.register(hot_path)  # type: ignore[arg-type]  (a collector: anything with collect())
record_request = hot_path.record_request
ui_connections = Gauge('cxt_ui_connections', 'Dashboard pages open on this process (connected browser tabs).')
sign_ins = Counter(
    'cxt_sign_ins',
    'Sign-in outcomes by method (password, passkey, sso) and result (ok, failed, locked).',
    ['method', 'result'],
)
mail_sent = Counter(
    'cxt_mail_sent',
    'Mails handed to the SMTP server (sent) or not (failed), by kind.',
    ['kind', 'result'],
)
database_ready = Gauge('cxt_database_ready', '1 while this process can save (as GET /api/ready decides), else 0.')
events_listening = Gauge(
    'cxt_events_listening', "1 while this process listens for other processes' changes (PostgreSQL), else 0."
)

# Every label value known in advance starts at 0, so a rate() has a series from the first scrape on.
for _method in SignInMethod:
    for _result in SignInResult:
        sign_ins.labels(_method, _result)


def count_key_verification(result: KeyVerification) -> None:
    """On the event loop's thread only (see _HotPathCounts)."""
    keys = hot_path.keys
    keys[result] = keys.get(result, 0) + 1


def count_mail(kind: str, *, sent: bool) -> None:
    mail_sent.labels(kind, MailResult.SENT if sent else MailResult.FAILED).inc()


def set_database_ready(ready: bool) -> None:
    database_ready.set(1 if ready else 0)


def set_events_listening(listening: bool) -> None:
    events_listening.set(1 if listening else 0)


def watch_ui_connections(count_open_pages: Callable[[], int]) -> None:
    """Read the number of open pages at each scrape (the UI layer knows them; services do not import NiceGUI)."""
    ui_connections.set_function(lambda: float(count_open_pages()))


def exposition() -> bytes:
    """Every metric of this process in Prometheus' text format (with the client's process and GC metrics)."""
    return generate_latest(REGISTRY)


# Every sign-in outcome is written to the audit log (services/audit.py counts it here as it records it).
_AUDITED_SIGN_INS: dict[str, Counter] = {
    AuditAction.LOGIN_SUCCEEDED: sign_ins.labels(SignInMethod.PASSWORD, SignInResult.OK),
    AuditAction.LOGIN_FAILED: sign_ins.labels(SignInMethod.PASSWORD, SignInResult.FAILED),
    AuditAction.PASSKEY_SIGN_IN_SUCCEEDED: sign_ins.labels(SignInMethod.PASSKEY, SignInResult.OK),
    AuditAction.PASSKEY_SIGN_IN_FAILED: sign_ins.labels(SignInMethod.PASSKEY, SignInResult.FAILED),
    AuditAction.SSO_SIGN_IN_SUCCEEDED: sign_ins.labels(SignInMethod.SSO, SignInResult.OK),
    AuditAction.SSO_SIGN_IN_REFUSED: sign_ins.labels(SignInMethod.SSO, SignInResult.FAILED),
}


def count_audited_sign_in(action: str) -> None:
    """Count `action` if it is a sign-in outcome (any other audited action is not a sign-in)."""
    counter = _AUDITED_SIGN_INS.get(action)
    if counter is not None:
        counter.inc()


@contextmanager
def counting_lockout(method: SignInMethod) -> Iterator[None]:
    """Around the throttle's check: a sign-in it refuses (too many failed attempts) is counted as `locked`."""
    try:
        yield
    except LoginLocked:
        sign_ins.labels(method, SignInResult.LOCKED).inc()
        raise
