"""Property-based requests over the served OpenAPI schema (schemathesis): at least 500, against a
real server on loopback, with 0 responses 5xx and 0 that break the schema they document."""

from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

PER_OPERATION = 50
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_generated_requests_get_no_5xx_and_match_the_schema(serve):
    import schemathesis

    served = serve()
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    sent, failures = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=PER_OPERATION, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def check(case):
            nonlocal sent
            response = case.call(base_url=served.url, timeout=120)
            sent += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as exc:  # collected, so one run reports every operation that fails
                failures.append(f"{case.method} {case.path}: {str(exc).splitlines()[0]}")

        check()
    assert failures == []
    assert sent >= 500
