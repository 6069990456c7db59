from django.urls import path

from wallet import card_page

urlpatterns = [
    path("<str:slug>/", card_page.card_page, name="card-page"),
    path("<str:slug>/qr.svg", card_page.card_page_qr, name="card-page-qr"),
    path("<str:slug>/status.json", card_page.card_page_status, name="card-page-status"),
    path("<str:slug>/google/", card_page.card_page_google, name="card-page-google"),
    path("<str:slug>/pass.pkpass", card_page.card_page_apple_pass, name="card-page-apple-pass"),
]
