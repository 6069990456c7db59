"""Acceptance: walking every admin changelist, change view, history, filter, search, autocomplete, action
and report as the owner of merchant ALPHA finds nothing of merchant BRAVO.

The walk is generic over `admin.site._registry`, so an admin added later is walked too, and BRAVO's rows
are found through the same scoping rule the admin uses, so the test does not repeat the admin's list.
"""
import pytest
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.db import models
from django.urls import reverse

from backoffice.reports import REPORTS
from core.admin_base import MerchantScopedAdmin
from core.tenancy import scope_queryset
from engagement.models import Audience, Campaign, Offer
from tests.admin.tenant_world import build_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenants():
    return build_tenant("ALPHA"), build_tenant("BRAVO")


@pytest.fixture
def owner_client(client, tenants):
    client.force_login(tenants[0].owner)
    return client


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _assert_clean(response, bravo, sent=()):
    """No BRAVO text in the page, except a value the request itself sent (a filter's id is echoed back)."""
    body = response.content.decode("utf-8", "replace")
    leaks = [text for text in bravo.texts() if text in body and text not in {str(value) for value in sent}]
    assert not leaks, f"{response.request['PATH_INFO']}?{response.request.get('QUERY_STRING', '')} shows {leaks}"


def _rows(model_admin, tenant):
    queryset = model_admin.model._default_manager.all()
    return list(scope_queryset(queryset, {tenant.merchant.pk}, model_admin.merchant_lookup).distinct())


def _scoped_admins():
    return [(model, model_admin) for model, model_admin in admin.site._registry.items()
            if isinstance(model_admin, MerchantScopedAdmin)]


def _bravo_ids(bravo) -> dict:
    """BRAVO's row for each model a filter may point at."""
    return {
        "merchants.merchant": bravo.merchant.pk, "merchants.store": bravo.store.pk,
        "merchants.program": bravo.program.pk, "merchants.tier": bravo.program.tiers.get().pk,
        "merchants.reward": bravo.reward.pk, "merchants.staffmember": bravo.cashier.pk,
        "core.user": bravo.owner.pk, "pos_integration.posdevice": bravo.device.pk,
        "pos_integration.posconnection": bravo.pos_connection.pk, "wallet.card": bravo.cards[0].pk,
        "engagement.campaign": Campaign.objects.get(merchant=bravo.merchant).pk,
        "engagement.offer": Offer.objects.get(merchant=bravo.merchant).pk,
        "engagement.audience": Audience.objects.get(merchant=bravo.merchant).pk,
    }


def test_every_scoped_admin_is_walked_with_rows_of_both_merchants(tenants):
    """Guards the walk itself: every scoped model has rows of both merchants, or the walk proves nothing."""
    alpha, bravo = tenants
    empty = [model._meta.label for model, model_admin in _scoped_admins()
             if not (_rows(model_admin, alpha) and _rows(model_admin, bravo))]
    assert empty == []


def test_changelists_filters_and_searches_show_nothing_of_another_merchant(owner_client, tenants):
    alpha, bravo = tenants
    bravo_ids = _bravo_ids(bravo)
    for model, model_admin in _scoped_admins():
        changelist = _url(model, "changelist")
        response = owner_client.get(changelist)
        assert response.status_code == 200, model._meta.label
        _assert_clean(response, bravo)
        assert alpha.marker in response.content.decode() or not model_admin.list_display_links, model._meta.label
        if model_admin.search_fields:  # a prefix of the marker: the search box echoes the term itself
            _assert_clean(owner_client.get(changelist, {"q": bravo.marker[:-1]}), bravo)
        for spec in model_admin.get_list_filter(None):
            if isinstance(spec, type) and issubclass(spec, admin.SimpleListFilter):
                for value in bravo_ids.values():
                    _assert_clean(owner_client.get(changelist, {spec.parameter_name: value}), bravo, [value])
                continue
            field_path = spec[0] if isinstance(spec, tuple) else spec
            last = get_fields_from_path(model, field_path)[-1]
            if isinstance(last, (models.ForeignKey, models.OneToOneField)):
                target = bravo_ids.get(last.related_model._meta.label_lower)
                if target is not None:
                    response = owner_client.get(changelist, {f"{field_path}__id__exact": target})
                    _assert_clean(response, bravo, [target])


def test_change_history_and_add_views_show_own_rows_and_refuse_the_other_merchants(owner_client, tenants):
    alpha, bravo = tenants
    for model, model_admin in _scoped_admins():
        for row in _rows(model_admin, alpha):
            response = owner_client.get(_url(model, "change", row.pk))
            assert response.status_code == 200, (model._meta.label, row.pk)
            _assert_clean(response, bravo)  # form choice lists included
            if hasattr(model_admin, "history_view"):
                history = owner_client.get(_url(model, "history", row.pk))
                assert history.status_code == 200
                _assert_clean(history, bravo)
        for row in _rows(model_admin, bravo):
            response = owner_client.get(_url(model, "change", row.pk))
            assert response.status_code in (302, 403, 404), (model._meta.label, row.pk, response.status_code)
            # The admin answers "no such object" on the next page, naming the id that was asked for.
            _assert_clean(owner_client.get(_url(model, "change", row.pk), follow=True), bravo, [row.pk])
            if hasattr(model_admin, "history_view"):
                history = owner_client.get(_url(model, "history", row.pk))
                assert history.status_code in (302, 403, 404), (model._meta.label, "history")
        add = owner_client.get(_url(model, "add"))
        assert add.status_code in (200, 403), model._meta.label
        _assert_clean(add, bravo)


def test_actions_on_the_other_merchants_rows_change_nothing_and_export_nothing(owner_client, tenants):
    alpha, bravo = tenants
    request = owner_client.get(reverse("admin:index")).wsgi_request
    for model, model_admin in _scoped_admins():
        bravo_rows = _rows(model_admin, bravo)
        before = list(model._default_manager.filter(pk__in=[row.pk for row in bravo_rows]).order_by("pk").values())
        for action in model_admin.get_actions(request):
            response = owner_client.post(_url(model, "changelist"), {
                "action": action, "_selected_action": [row.pk for row in bravo_rows], "index": 0})
            _assert_clean(response, bravo)
        after = list(model._default_manager.filter(pk__in=[row.pk for row in bravo_rows]).order_by("pk").values())
        assert after == before, model._meta.label


def test_autocomplete_offers_nothing_of_the_other_merchant(owner_client, tenants):
    alpha, bravo = tenants
    walked = 0
    for model, model_admin in _scoped_admins():
        for field_name in model_admin.autocomplete_fields:
            for term in ("", bravo.marker[:-1], alpha.marker[:-1]):
                response = owner_client.get(reverse("admin:autocomplete"), {
                    "term": term, "app_label": model._meta.app_label, "model_name": model._meta.model_name,
                    "field_name": field_name})
                assert response.status_code == 200
                _assert_clean(response, bravo)
            walked += 1
    assert walked, "no autocomplete field was walked"


def test_platform_admin_pages_are_closed_to_merchant_staff(owner_client):
    for model, model_admin in admin.site._registry.items():
        if isinstance(model_admin, MerchantScopedAdmin):
            continue
        response = owner_client.get(_url(model, "changelist"))
        assert response.status_code == 403, model._meta.label


def test_report_pages_and_the_csv_show_only_the_owners_merchant(owner_client, tenants):
    alpha, bravo = tenants
    for name in [name for name, _title, _text in REPORTS] + ["backoffice:reconciliation-csv"]:
        response = owner_client.get(reverse(name))
        assert response.status_code == 200, name
        assert alpha.marker in response.content.decode(), name
        _assert_clean(response, bravo)
        asked = owner_client.get(reverse(name), {"merchant": bravo.merchant.pk})
        assert asked.status_code == 404, name
        _assert_clean(asked, bravo, [bravo.merchant.pk])
    another_store = owner_client.get(reverse("backoffice:reconciliation"),
                                     {"merchant": alpha.merchant.pk, "store": bravo.store.pk})
    assert another_store.status_code == 200
    _assert_clean(another_store, bravo, [bravo.store.pk])
