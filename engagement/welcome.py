"""Being built (issue 8): a new member's welcome offer message."""


def card_enrolled(card, occurred_at):
    return None
