"""WSGI entry point (gunicorn config.wsgi).

Paths under /i/ (the signed pass-QR image URLs) are answered by wallet.passes.image_urls before
Django's request stack: they need no middleware, authentication or database, and skipping them is
what lets one core serve thousands of them a second. Every other request goes to Django unchanged.
"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from wallet.passes import image_urls  # noqa: E402 - imports models: after get_wsgi_application's setup

application = image_urls.mount(django_application)
