"""Being built (issue 8): the offer whose multiplier or bonus applies to a purchase at the counter."""


def earning_bonus(card, request, occurred_at):
    return None
