"""The channel senders this site uses (settings.TESSERA_ENGAGEMENT_CHANNELS: key -> dotted path)."""
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from engagement.channels.base import ChannelSender


def channel_sender(key: str) -> ChannelSender | None:
    """A fresh sender for channel `key`, or None if the site lists none for it."""
    path = settings.TESSERA_ENGAGEMENT_CHANNELS.get(key)
    if not path:
        return None
    sender_class = import_string(path)
    if not (isinstance(sender_class, type) and issubclass(sender_class, ChannelSender)):
        raise ImproperlyConfigured(f"{path} is not a ChannelSender.")
    return sender_class()
