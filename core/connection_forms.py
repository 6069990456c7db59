"""The admin form shared by POS and CRM connections: the connector's settings as one JSON object.

Saved secrets come back masked (••••1234); a masked or blank value keeps the saved secret, so a
secret is never shown again in full. The connector's own checks run on the form, so a bad setting
is shown next to the field instead of failing on save.
"""
from django import forms

from core import secret_box
from core.plugins import ConfigInvalid, merged_secrets, split_settings

MASK = "••••"


class ConnectionSettingsForm(forms.ModelForm):
    registry = None  # the module with choices() and get_connector(key): set by each subclass

    connector = forms.ChoiceField(choices=())
    settings_json = forms.JSONField(
        label="Settings", required=False, initial=dict,
        help_text="The connector's settings as JSON; see the list of fields below.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "connector" in self.fields:  # a read-only view (no change permission) has no form fields
            self.fields["connector"].choices = self.registry.choices()
        if not self.instance._state.adding:  # (a new row already has its UUID: pk is no test)
            for name in ("connector", "merchant"):
                if name in self.fields:
                    self.fields[name].disabled = True
            masked = {name: secret_box.mask(value)
                      for name, value in secret_box.unseal(self.instance.secrets_encrypted).items()}
            self.initial["settings_json"] = {**self.instance.config, **masked}
        cls = self.registry.get_connector(self.initial.get("connector") or self.instance.connector or "")
        if cls is not None:
            self.fields["settings_json"].help_text = "Fields: " + "; ".join(
                f"{f.name} ({'secret, ' if f.secret else ''}{'required' if f.required else 'optional'}): {f.label}"
                for f in cls.config_fields
            )

    def clean_settings_json(self):
        values = self.cleaned_data.get("settings_json") or {}
        if not isinstance(values, dict):
            raise forms.ValidationError("Enter a JSON object.")
        return {k: v for k, v in values.items() if not (isinstance(v, str) and v.startswith(MASK))}

    def clean(self):
        cleaned = super().clean()
        cls = self.registry.get_connector(cleaned.get("connector") or self.instance.connector or "")
        if cls is None or "settings_json" not in cleaned:
            return cleaned
        config, new_secrets = split_settings(cls.config_fields, cleaned["settings_json"])
        saved = secret_box.unseal(self.instance.secrets_encrypted) if not self.instance._state.adding else {}
        try:
            cls.validate_config(config, merged_secrets(saved, new_secrets))
        except ConfigInvalid as error:
            self.add_error("settings_json", "; ".join(f"{k}: {v}" for k, v in error.errors.items()))
        return cleaned
