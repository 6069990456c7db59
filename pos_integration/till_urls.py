"""`/till/`: the cashier's web till for merchants without a POS (see pos_integration.till)."""
from django.urls import path

from pos_integration.till import till_page

urlpatterns = [path("", till_page, name="till")]
