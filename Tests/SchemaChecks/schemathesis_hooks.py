"""schemathesis checks for run_schemathesis.py: two built-in checks that also know the
refusals schemas/openapi.yaml documents for schema-valid requests.

Some answers depend on the server's state, which no JSON Schema can express: a `cursor`
this server never gave out (400 `bad_cursor`), a `minPosition` on a partition the topic
does not have (400 `unknown_partition`), an `Idempotency-Key` reused for a different
request (422 `idempotency_key_reused`), a position not applied within `wait` (503
`not_yet`). Each operation lists them in `x-state-refusals` as "STATUS code" strings.

`positive_data_acceptance` (a schema-valid request must not be refused) and
`not_a_server_error` (no 5xx) cannot be told about them; run_schemathesis.py excludes both
and runs these instead. They accept a response whose status and JSON error `code` are in
its operation's `x-state-refusals`, and apply the built-in check to every other response,
so an undocumented refusal, or a documented status with another code, still fails.
"""
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance


def documented_refusal(response, case):
    """Whether the response is one of its operation's `x-state-refusals`."""
    refusals = case.operation.definition.raw.get("x-state-refusals", [])
    try:
        code = response.json()["error"]["code"]
    except Exception:  # not a JSON error body: never a documented refusal
        return False
    return f"{response.status_code} {code}" in refusals


@schemathesis.check
def positive_data_acceptance_or_state_refusal(ctx, response, case):
    """positive_data_acceptance, except for the operation's documented `x-state-refusals`."""
    if documented_refusal(response, case):
        return None
    return positive_data_acceptance(ctx, response, case)


@schemathesis.check
def not_a_server_error_or_state_refusal(ctx, response, case):
    """not_a_server_error, except for the operation's documented `x-state-refusals` (503 `not_yet`)."""
    if documented_refusal(response, case):
        return None
    return not_a_server_error(ctx, response, case)
