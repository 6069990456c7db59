"""A campaign text costs at most two SMS whatever its characters: texts are measured in the units
Twilio bills (GSM-7 septets, or UTF-16 units once one character is outside GSM-7) and cut to fit."""
import pytest

from engagement.content import render, sms_body
from engagement.sms_length import is_gsm7, segments, units

LINK = "https://tessera.example/e/o/AbCdEf123/"


@pytest.mark.parametrize("text, expected", [
    ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),  # GSM-7: 160 alone, 153 a part
    ("€" * 80, 1), ("€" * 81, 2),  # extension characters take two septets
    ("ж" * 70, 1), ("ж" * 71, 2), ("ж" * 134, 2), ("ж" * 135, 3),  # UCS-2: 70 alone, 67 a part
    ("😀" * 35, 1), ("😀" * 36, 2),  # an emoji is two UTF-16 units
    ("Café crème à 2€ [promo]", 1),
])
def test_segments_are_counted_as_the_network_bills_them(text, expected):
    assert segments(text) == expected


def test_one_character_outside_gsm7_switches_the_whole_text_to_ucs2():
    assert is_gsm7("Crème: é, è, à, ü, ñ") and units("Crème: é, è, à, ü, ñ") == 20
    assert not is_gsm7("Crème brûlée")  # û is not in GSM-7: the whole text goes as UCS-2
    assert units("€") == 2 and units("😀") == 2


@pytest.mark.parametrize("text", [
    "Double points on every pastry this weekend. " * 20,  # plain GSM-7
    "Double points 😀 on every pastry this weekend. " * 20,  # an emoji: UCS-2, 67 units a part
    "Скидка на всю выпечку в эти выходные. " * 20,  # Cyrillic
    "Deals {today} [all] ~ week | € " * 30,  # extension characters, two septets each
])
def test_a_long_campaign_text_is_cut_to_two_sms_and_keeps_its_opt_out_link(text):
    body = sms_body("Lumière", text, LINK)
    assert segments(body) == 2
    assert body.startswith("Lumière: ") and body.endswith(f"... Stop: {LINK}")


def test_a_text_that_fits_is_not_cut_and_the_channel_render_uses_the_same_rule():
    text = "Free coffee with any pastry 😀"
    assert sms_body("Lumière", text, LINK) == f"Lumière: {text} Stop: {LINK}"
    rendered = render("sms", merchant_name="Lumière", subject="Hi", body="Скидка " * 100, opt_out_url=LINK)
    assert segments(rendered.body) == 2 and rendered.body.endswith(LINK)
