"""Being built."""
from django.http import HttpResponse


def _todo(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)


reconciliation = reconciliation_csv = liability = billing = checkout = portal = _todo
