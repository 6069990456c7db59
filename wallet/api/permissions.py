"""Who may call the customer API: an authenticated, not-erased customer, and only for their own data."""
from rest_framework.permissions import BasePermission

from wallet.models import Customer


class IsCustomer(BasePermission):
    message = "This endpoint is for wallet customers."

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        customer = getattr(user, "customer", None)
        return customer is not None and customer.erased_at is None


def current_customer(request) -> Customer:
    """The customer behind the request; views scope every queryset through this, so another
    customer's object is simply not found (404), never forbidden (which would confirm it exists)."""
    return request.user.customer
