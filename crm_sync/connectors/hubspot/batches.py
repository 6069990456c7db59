"""Sending many records in HubSpot-sized requests without letting one bad record block the rest.

HubSpot refuses a whole batch with a 400 when one record in it is invalid (vendors-and-reliability.md
7), so a refused request is split in halves until the bad record stands alone and is reported; the
others go through. Splitting costs requests against a limit of 100-190 per 10 seconds, so it stops
after `budget` extra requests: records not yet isolated are reported as retryable and the search
goes on at the next attempt.
"""
from collections.abc import Callable
from dataclasses import dataclass

BISECT_BUDGET = 24  # enough to isolate one bad record among 100 (7 halvings, 14 requests)


class BatchRefused(Exception):
    """HubSpot refused a whole request as invalid (400, 409, 413, 422)."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Failure:
    error: str
    retryable: bool


def send_isolating(send: Callable[[list], dict[int, str]], items: list, *, limit: int,
                   budget: int = BISECT_BUDGET) -> dict[int, Failure]:
    """Send `items` in order, at most `limit` a request. `send` returns {position: error} for records
    HubSpot reported failed one by one (a 207), or raises BatchRefused. Returns {index: Failure}."""
    failures: dict[int, Failure] = {}
    queue = [list(range(start, min(start + limit, len(items)))) for start in range(0, len(items), limit)]
    extra = 0
    while queue:
        chunk = queue.pop(0)
        try:
            reported = send([items[i] for i in chunk])
        except BatchRefused as refused:
            if len(chunk) == 1:
                failures[chunk[0]] = Failure(str(refused), retryable=False)
            elif extra + 2 > budget:
                failures.update({i: Failure(f"Not isolated yet in a refused batch: {refused}", retryable=True)
                                 for i in chunk})
            else:
                extra += 2
                middle = len(chunk) // 2
                queue[:0] = [chunk[:middle], chunk[middle:]]  # depth first keeps the records in order
            continue
        failures.update({chunk[position]: Failure(error, retryable=False) for position, error in reported.items()})
    return failures
