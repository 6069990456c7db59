"""Staff set and reset their admin password: "Forgotten your password?" on the admin login page, and the
"set your password" mail a colleague added by email gets (merchants.services.add_staff_by_email).

Django's own views and admin templates, with four changes:
- Only people the admin lets in are mailed (active, is_staff, and a superuser or an owner or manager at an
  active membership). Customers share the user table but have their own password API; a mail titled for the
  admin would be a confusing phishing template to them, and a former colleague has no use for a link.
- Unlike Django's default, staff without a usable password are mailed too: that is exactly the colleague an
  owner added by email, and Tessera has no single sign-on that such an account would belong to.
- Links are made with Tessera's public URL (TESSERA_PUBLIC_URL), never the request's Host header, and with a
  token generator of our own salt, so no other flow's tokens open this form. A token holds the password
  hash and last login, so a link works once (and for PASSWORD_RESET_TIMEOUT, three days by default).
- The form is rate-limited per client address (THROTTLE_PASSWORD_RESET) and per email address asked about
  (THROTTLE_PASSWORD_RESET_EMAIL), counted whether or not the address has an account, so the limit tells
  nobody which addresses exist and nobody can fill a colleague's inbox.
"""
import logging
import unicodedata
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import EmailMessage
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.crypto import salted_hmac
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from core.tenancy import may_use_admin  # nobody else gets or uses a link
from core.throttling import FixedWindowThrottle

logger = logging.getLogger(__name__)


class StaffPasswordTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "merchants.password_reset.StaffPasswordTokenGenerator"


staff_password_tokens = StaffPasswordTokenGenerator()


def _link_parts() -> dict:
    public = urlsplit(settings.TESSERA_PUBLIC_URL)
    return {"protocol": public.scheme or "https", "domain": public.netloc}


def _same_email(a: str, b: str) -> bool:
    return unicodedata.normalize("NFKC", a).casefold() == unicodedata.normalize("NFKC", b).casefold()


class StaffPasswordResetForm(PasswordResetForm):
    def get_users(self, email):
        users = get_user_model()._default_manager.filter(email__iexact=email, is_active=True, is_staff=True)
        return (user for user in users if _same_email(email, user.email) and may_use_admin(user))


def send_staff_invitation(user_id: int, merchant_id: int) -> None:
    """Mail a colleague just added by email a one-time link to set their password. Runs after the commit;
    a mail that fails is logged, and the colleague can still use "Forgotten your password?"."""
    from merchants.models import Merchant

    user = get_user_model()._default_manager.filter(pk=user_id).first()
    merchant = Merchant.objects.filter(pk=merchant_id).first()
    if user is None or merchant is None or not user.email or not may_use_admin(user):
        return  # a cashier uses a PIN at the counter, not the admin
    context = {
        **_link_parts(), "user": user, "merchant": merchant, "site_name": admin.site.site_header,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)), "token": staff_password_tokens.make_token(user),
    }
    subject = "".join(render_to_string("merchants/staff_invitation_subject.txt", context).splitlines())
    body = render_to_string("merchants/staff_invitation_email.txt", context)
    try:
        EmailMessage(subject, body, None, [user.email]).send()
    except Exception:
        logger.exception("Could not send the set-password invitation to user %s", user.pk)


class _FormThrottle(FixedWindowThrottle):
    """core.throttling's counter for a plain Django view: the view names the scope and the caller."""

    def __init__(self, scope: str, ident: str | None = None):
        self.scope, self.ident = scope, ident

    def get_scope(self, request, view):
        return self.scope

    def get_ident_for(self, request, view):
        return self.ident


def _wait(request, scope: str, ident: str) -> int | None:
    """Seconds until this caller may try again, or None when the request is within the limit."""
    throttle = _FormThrottle(scope, ident)
    return None if throttle.allow_request(request, None) else throttle.wait()


class _AdminLook:
    """The admin's header, title and links around Django's password reset pages."""

    def get_context_data(self, **kwargs):
        return {**admin.site.each_context(self.request), **super().get_context_data(**kwargs)}


class StaffPasswordResetView(_AdminLook, auth_views.PasswordResetView):
    form_class = StaffPasswordResetForm
    token_generator = staff_password_tokens

    def post(self, request, *args, **kwargs):
        form = self.get_form()
        address = _FormThrottle("password_reset").get_ident(request)
        wait = _wait(request, "password_reset", f"ip-{address}")
        if wait is None and form.is_valid():
            email = form.cleaned_data["email"].strip().lower()
            account = salted_hmac("merchants.password_reset.email", email).hexdigest()  # never in clear
            wait = _wait(request, "password_reset_email", account)
            if wait is None:
                return self.form_valid(form)
        if wait is None:
            return self.form_invalid(form)
        logger.warning("Password reset form throttled for %s", address)
        form.is_valid()
        form.add_error("email", "Too many password reset requests. Try again later.")
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(wait)
        return response

    def form_valid(self, form):
        parts = _link_parts()
        form.save(
            domain_override=parts["domain"], use_https=parts["protocol"] == "https", request=self.request,
            token_generator=self.token_generator, email_template_name=self.email_template_name,
            subject_template_name=self.subject_template_name,
            extra_email_context={"site_name": admin.site.site_header},
        )
        return HttpResponseRedirect(self.get_success_url())


class StaffPasswordResetDoneView(_AdminLook, auth_views.PasswordResetDoneView):
    pass


class StaffPasswordResetConfirmView(_AdminLook, auth_views.PasswordResetConfirmView):
    token_generator = staff_password_tokens

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        return user if user is not None and may_use_admin(user) else None


class StaffPasswordResetCompleteView(_AdminLook, auth_views.PasswordResetCompleteView):
    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "login_url": reverse("admin:login")}


# Django's URL names: the admin login page shows its "Forgotten your password?" link when
# `admin_password_reset` exists, and the admin's registration/ templates link to the other three.
urlpatterns = [
    path("", StaffPasswordResetView.as_view(), name="admin_password_reset"),
    path("sent/", StaffPasswordResetDoneView.as_view(), name="password_reset_done"),
    path("<uidb64>/<token>/", StaffPasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("done/", StaffPasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
