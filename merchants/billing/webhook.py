"""The Stripe billing webhook (being built)."""
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def stripe_billing_webhook(request):
    return HttpResponse(status=501)
