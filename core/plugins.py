"""Finding plug-in classes: dotted paths listed in a setting, plus an entry-point group that any
installed package can declare (so a third party ships a connector with `pip install`).

Used by the POS and CRM connector registries. Two plug-ins with the same key are a configuration
error, raised when the registry is first read, not silently shadowed.
"""
from dataclasses import dataclass
from importlib.metadata import entry_points

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


def load_plugins(*, dotted_paths: list[str], group: str, base: type) -> dict[str, type]:
    """{key: class} for every plug-in listed in `dotted_paths` or declared under entry-point `group`."""
    found: dict[str, type] = {}
    candidates = [(path, lambda p=path: import_string(p)) for path in dotted_paths]
    candidates += [(f"entry point {ep.name} = {ep.value}", ep.load) for ep in entry_points(group=group)]
    for origin, load in candidates:
        try:
            plugin = load()
        except Exception as error:  # a broken third-party package must name itself
            raise ImproperlyConfigured(f"Could not load plug-in {origin}: {error}") from error
        if not (isinstance(plugin, type) and issubclass(plugin, base)) or not getattr(plugin, "key", ""):
            raise ImproperlyConfigured(f"{origin} is not a {base.__name__} with a key.")
        existing = found.get(plugin.key)
        if existing is not None and existing is not plugin:
            raise ImproperlyConfigured(
                f"Two plug-ins use the key {plugin.key!r}: {existing.__module__} and {plugin.__module__}."
            )
        found[plugin.key] = plugin
    return found


class ConfigInvalid(Exception):
    def __init__(self, errors: dict):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ConfigField:
    """One setting of a connection. Secret fields are stored encrypted and never shown in full again."""

    name: str
    label: str
    secret: bool = False
    required: bool = True
    help_text: str = ""


def check_config_fields(fields, config: dict, secrets: dict) -> None:
    """The checks every connector's config gets: required fields present, no unknown settings."""
    errors = {}
    for field in fields:
        source = secrets if field.secret else config
        if field.required and not str(source.get(field.name) or "").strip():
            errors[field.name] = "This field is required."
    known = {f.name for f in fields}
    for name in [*config, *secrets]:
        if name not in known:
            errors[name] = "Unknown setting for this connector."
    if errors:
        raise ConfigInvalid(errors)


def split_settings(fields, values: dict) -> tuple[dict, dict]:
    """One JSON object of settings -> (config, secrets), by the fields' secret flags."""
    secret_names = {f.name for f in fields if f.secret}
    return ({k: v for k, v in values.items() if k not in secret_names},
            {k: v for k, v in values.items() if k in secret_names})


def validated_settings(plugin, config: dict, secrets: dict) -> None:
    """Run the plug-in's own config checks; refuse with one 400 naming each bad field."""
    from core.errors import ValidationFailed

    try:
        plugin.validate_config(config, secrets)
    except ConfigInvalid as error:
        raise ValidationFailed("The connection's settings are not valid.", fields={
            name: [message] for name, message in error.errors.items()
        }) from None


def merged_secrets(saved: dict, new: dict) -> dict:
    """A secret left blank keeps its saved value: it is never shown again to be re-entered."""
    return {**saved, **{k: v for k, v in new.items() if str(v or "").strip()}}
