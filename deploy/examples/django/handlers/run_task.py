#!/usr/bin/env python3
"""The gallery's taskpipe handler: one script for both task kinds, chosen by the JSON
payload's "kind". A worker runs it once per task with the payload as its last argument:

    worker --ventilator tcp://head:5557 --sink tcp://head:5558 -c 2 -- \\
        /usr/bin/python3 deploy/examples/django/handlers/run_task.py

    {"kind": "thumbnail", "source": "uploads/a.jpg", "thumbnail": "thumbs/<id>.jpg"}
        ImageMagick's convert makes a thumbnail of at most 200x200 under MEDIA_ROOT
    {"kind": "email", "to": "...", "subject": "...", "body": "..."}
        sends it with Django's mail API (EMAIL_HOST, EMAIL_PORT)

It reads the Django settings (DJANGO_SETTINGS_MODULE, default thumbs_site.settings, and their
environment: GALLERY_DATA, EMAIL_PORT...), so the worker needs the web application's
environment. It prints one JSON line on success; exit status 0 ok, 1 the job failed (the reason
on stderr, which the status page shows), 2 a payload it does not understand.
"""

import json
import os
import subprocess
import sys

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THUMBNAIL_SIZE = "200x200"


class BadPayload(Exception):
    pass


def media_path(settings, name):
    """`name` under MEDIA_ROOT; a payload may not point anywhere else."""
    if not isinstance(name, str) or not name:
        raise BadPayload(f"expected a file name, got {name!r}")
    root = os.path.realpath(settings.MEDIA_ROOT)
    path = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, path]) != root:
        raise BadPayload(f"{name!r} is outside MEDIA_ROOT")
    return path


def thumbnail(settings, job):
    source = media_path(settings, job.get("source"))
    target = media_path(settings, job.get("thumbnail"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    # Written beside the target and renamed: the status page never shows half a file.
    partial = target + ".partial.jpg"
    done = subprocess.run(["convert", source, "-auto-orient", "-thumbnail",
                           THUMBNAIL_SIZE + ">", partial], stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        return done.returncode
    os.replace(partial, target)
    print(json.dumps({"thumbnail": job["thumbnail"]}))
    return 0


def email(settings, job):
    from django.core.mail import send_mail
    for field in ("to", "subject", "body"):
        if not isinstance(job.get(field), str):
            raise BadPayload(f"an email job needs a string {field!r}")
    send_mail(job["subject"], job["body"], settings.DEFAULT_FROM_EMAIL, [job["to"]])
    print(json.dumps({"sent_to": job["to"]}))
    return 0


KINDS = {"thumbnail": thumbnail, "email": email}


def main(argv):
    if len(argv) != 2:
        print("usage: run_task.py JSON_PAYLOAD", file=sys.stderr)
        return 2
    try:
        job = json.loads(argv[1])
        if not isinstance(job, dict) or job.get("kind") not in KINDS:
            raise BadPayload(f"unknown kind {job.get('kind') if isinstance(job, dict) else job!r}")
        sys.path.insert(0, PROJECT)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thumbs_site.settings")
        import django
        from django.conf import settings
        django.setup()
        return KINDS[job["kind"]](settings, job)
    except (ValueError, BadPayload) as e:
        print(f"run_task: bad payload: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # the job failed: say why on stderr, for the status page
        print(f"run_task: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
