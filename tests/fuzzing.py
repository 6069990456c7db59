"""What the schemathesis fuzz runs (customer API, POS API) share: one operation's run, reported."""
from hypothesis.errors import Unsatisfiable


def failure_of(run, operation, mode) -> str | None:
    """Run one operation's generated cases; None when they all passed, else what failed, per operation."""
    try:
        run()
    except Unsatisfiable:
        return None  # nothing to make invalid (no parameters or body): the positive run covers it
    except Exception as failure:  # noqa: BLE001 - every failure is reported, per operation
        causes = "".join(f"\n  {cause}" for cause in getattr(failure, "exceptions", ()))  # a flaky run's own
        return f"{operation.method.upper()} {operation.path} ({mode.value}): {failure}{causes}"
    return None
