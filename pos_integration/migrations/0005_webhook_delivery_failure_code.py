from django.db import migrations, models

# The sentence wallet.errors.EarningPaused carries (merchants.billing.policy.earning_paused_reason).
PAUSED_PREFIX = "Earning points is paused"


def mark_held_deliveries(apps, schema_editor):
    """Deliveries that failed because earning was paused before this field existed get its code, so
    the merchant's next payment replays them like the ones that fail from now on."""
    WebhookDelivery = apps.get_model("pos_integration", "WebhookDelivery")
    WebhookDelivery.objects.filter(status="failed", error__startswith=PAUSED_PREFIX).update(
        failure_code="earning_paused"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('pos_integration', '0004_webhook_delivery_event_unique'),
    ]

    operations = [
        migrations.AddField(
            model_name='webhookdelivery',
            name='failure_code',
            field=models.CharField(blank=True, editable=False, max_length=40),
        ),
        migrations.RunPython(mark_held_deliveries, migrations.RunPython.noop),
    ]
