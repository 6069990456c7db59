"""Who gets into the admin and what each role may change there."""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from merchants.models import Reward, StaffMember
from merchants.services import deactivate_staff
from pos_integration.models import PosConnection
from tests.admin.tenant_world import build_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha():
    return build_tenant("ALPHA")


def _admin_index(client, user):
    client.force_login(user)
    return client.get(reverse("admin:index"))


def test_cashiers_and_staff_without_a_merchant_role_cannot_open_the_admin(client, alpha):
    cashier_user = alpha.cashier.user
    cashier_user.is_staff = True  # even with the staff flag set by hand
    cashier_user.save()
    assert _admin_index(client, cashier_user).status_code == 302
    loner = get_user_model().objects.create_user("loner", password="x", is_staff=True)
    assert _admin_index(client, loner).status_code == 302


def test_owner_and_manager_open_the_admin_until_their_membership_ends(client, alpha):
    assert _admin_index(client, alpha.manager).status_code == 200
    deactivate_staff(StaffMember.objects.get(user=alpha.manager))
    assert _admin_index(client, alpha.manager).status_code == 302
    assert _admin_index(client, alpha.owner).status_code == 200


def test_a_manager_edits_rewards_but_not_connections_or_staff(client, alpha):
    client.force_login(alpha.manager)
    url = reverse("admin:merchants_reward_change", args=[alpha.reward.pk])
    form = client.get(url).context["adminform"].form
    data = {**form.initial, "program": alpha.program.pk, "points_cost": 12, "stock": ""}
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assert Reward.objects.get(pk=alpha.reward.pk).points_cost == 12

    connection_url = reverse("admin:pos_integration_posconnection_change", args=[alpha.pos_connection.pk])
    page = client.get(connection_url)
    assert page.status_code == 200 and not page.context["has_change_permission"]
    client.post(connection_url, {"name": "Renamed by a manager", "is_active": "on"})
    assert PosConnection.objects.get(pk=alpha.pos_connection.pk).name == "ALPHA POS"
    assert client.get(reverse("admin:merchants_staffmember_add")).status_code == 403


def test_an_owner_adds_a_manager_by_email_who_can_then_use_the_admin(client, alpha):
    client.force_login(alpha.owner)
    response = client.post(reverse("admin:merchants_staffmember_add"), {
        "merchant": alpha.merchant.pk, "email": "new.manager@example.com", "first_name": "Nia", "role": "manager"})
    assert response.status_code == 302
    member = StaffMember.objects.get(user__email="new.manager@example.com")
    assert (member.merchant, member.role, member.user.is_staff, member.user.has_usable_password()) == (
        alpha.merchant, "manager", True, False)
    assert _admin_index(client, member.user).status_code == 200


def test_an_owner_cannot_add_staff_to_another_merchant_or_change_their_own_role(client, alpha):
    bravo = build_tenant("BRAVO")
    client.force_login(alpha.owner)
    response = client.post(reverse("admin:merchants_staffmember_add"), {
        "merchant": bravo.merchant.pk, "email": "spy@example.com", "role": "owner"})
    assert response.status_code == 200 and "merchant" in response.context["adminform"].form.errors
    assert not StaffMember.objects.filter(user__email="spy@example.com").exists()
    own = StaffMember.objects.get(user=alpha.owner)
    client.post(reverse("admin:merchants_staffmember_change", args=[own.pk]), {"role": "cashier"})
    own.refresh_from_db()
    assert own.role == "owner"
