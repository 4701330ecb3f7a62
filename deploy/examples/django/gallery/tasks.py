"""The gallery's two task kinds, and how the web side submits them and reads their state.

Both kinds go to one head and one pool of workers running one handler, handlers/run_task.py,
which reads the JSON payload's "kind" (see README.md for why, and for the alternative: one
pipeline per kind). Every task has a key made of its kind and the upload's id, so:
- submitting it twice gives the same task (a retry after a failed request is safe);
- the status page finds it by key, and nothing about it is stored in the database;
- a task that could not be submitted (the head was down) is submitted by the status page.
"""

import logging

import taskpipe
from django.conf import settings
from django.urls import reverse

from .taskpipe_client import client

log = logging.getLogger("gallery")

THUMBNAIL = "thumbnail"
EMAIL = "email"

# What the page says for each taskpipe state.
SHOWN = {"delayed": "queued", "queued": "queued", "running": "running", "ok": "done",
         "failed": "failed", "error": "failed", "timeout": "failed", "lost": "failed",
         "cancelled": "cancelled"}


def kinds(upload):
    return [THUMBNAIL, EMAIL] if upload.email else [THUMBNAIL]


def key(upload, kind):
    return f"{kind}-{upload.id}"


def payload(upload, kind):
    """The task's JSON payload: always the same for one upload and kind (a key must not be
    reused with another payload)."""
    if kind == THUMBNAIL:
        return {"kind": THUMBNAIL, "source": upload.image.name,
                "thumbnail": upload.thumbnail_name}
    url = settings.GALLERY_SITE_URL + reverse("status", args=[upload.id])
    return {"kind": EMAIL, "to": upload.email, "subject": "Your picture is in the gallery",
            "body": f"Thank you for your picture. Its thumbnail will be at {url}\n"}


def submit(upload, kind):
    return client().submit_json(payload(upload, kind), key=key(upload, kind), notify=False)


def enqueue(upload):
    """Submits the upload's tasks; called by transaction.on_commit, so only for a saved upload.
    A head that is down is logged, not raised: the upload is saved, and the status page
    submits the tasks when the head is back."""
    for kind in kinds(upload):
        try:
            submit(upload, kind)
        except taskpipe.TaskpipeError as e:
            log.warning("could not submit the %s task of upload %s yet: %s", kind, upload.id, e)


def state(upload, kind):
    """(shown state, Result or None) of one task of the upload, for the status page; never
    waits longer than the client's timeout."""
    try:
        result = client().status(key=key(upload, kind))
        if result.state == "unknown":   # never submitted (head down at upload), or expired
            submit(upload, kind)
            result = client().status(key=key(upload, kind))
    except taskpipe.TaskpipeError as e:
        log.warning("no state for the %s task of upload %s: %s", kind, upload.id, e)
        return "unavailable", None
    return SHOWN.get(result.state, result.state), result
