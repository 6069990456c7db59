"""The user model: one login for customers and merchant staff alike.

A custom user from the first migration, because swapping it later is a painful data migration.
Customers register by email or phone (customer API), so both are unique when present.
"""
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower


class User(AbstractUser):
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +14155550123")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"), name="user_email_unique_ci", condition=~models.Q(email="")
            ),
            models.UniqueConstraint(fields=["phone"], name="user_phone_unique", condition=~models.Q(phone="")),
        ]
