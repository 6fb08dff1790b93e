"""The registry client: push and pull over the distribution API (see `client`)."""

from hostprocess.oci.registry.client import RegistryClient
from hostprocess.oci.registry.errors import RegistryError
from hostprocess.oci.registry.progress import Progress
from hostprocess.oci.registry.push import PushResult, TagsNotMoved
from hostprocess.oci.registry.referrers import Attached, Attachment, AttachResult, Referrer
from hostprocess.oci.registry.retry import Retry

__all__ = [
    "Attached",
    "Attachment",
    "AttachResult",
    "Progress",
    "Referrer",
    "PushResult",
    "RegistryClient",
    "RegistryError",
    "Retry",
    "TagsNotMoved",
]
