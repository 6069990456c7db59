from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from core.admin_base import SuperuserOnlyAdmin
from core.models import User


@admin.register(User)
class UserAdmin(SuperuserOnlyAdmin, DjangoUserAdmin):
    fieldsets = DjangoUserAdmin.fieldsets + (("Contact", {"fields": ("phone",)}),)
    list_display = ("username", "email", "phone", "is_staff", "is_active")
    search_fields = ("username", "email", "phone")
