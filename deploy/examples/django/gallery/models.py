import uuid

from django.db import models


class Upload(models.Model):
    """An uploaded picture. Its tasks are found by key (`thumbnail-<id>`, `email-<id>`), so
    nothing about them needs storing here, and submitting them again is harmless."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    image = models.FileField(upload_to="uploads/")
    email = models.EmailField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    @property
    def thumbnail_name(self):
        """The thumbnail's file name under MEDIA_ROOT."""
        return f"thumbs/{self.id}.jpg"
