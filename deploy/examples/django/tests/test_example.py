"""The gallery example end to end: Django's test client uploads a picture; a real head, sink
and worker make its thumbnail with ImageMagick and send its e-mail to a local SMTP sink."""

import email
import os
import subprocess
import sys
import time

from programs import wait_for

from conftest import PROJECT

HANDLER = os.path.join(PROJECT, "handlers", "run_task.py")


def make_jpeg(directory, name):
    path = os.path.join(directory, name)
    subprocess.run(["convert", "-size", "640x480", "plasma:", path], check=True, timeout=60)
    return path


def upload(web, path, address):
    with open(path, "rb") as f:
        start = time.monotonic()
        response = web.post("/", {"image": f, "email": address})
        took = time.monotonic() - start
    assert response.status_code == 302, response.content.decode()[:2000]
    return response["Location"], took


def jobs(web, url):
    return {j["kind"]: j["state"] for j in web.get(url + "?format=json").json()["jobs"]}


def test_upload_makes_a_thumbnail_and_sends_an_email(service, smtp, gallery, workdir):
    from django.conf import settings
    from django.test import Client
    s = service()
    s.start_sink()
    s.start_head()
    web = Client()
    url, took = upload(web, make_jpeg(workdir, "holiday photo.jpg"), "alice@example.com")

    # No worker yet, so the upload view cannot have waited for the tasks: they are queued.
    assert took < settings.TASKPIPE_TIMEOUT
    assert jobs(web, url) == {"thumbnail": "queued", "email": "queued"}
    page = web.get(url).content.decode()
    assert 'class="state">queued<' in page and "<img" not in page

    s.start_worker("--", sys.executable, HANDLER)
    wait_for(lambda: jobs(web, url) == {"thumbnail": "done", "email": "done"}, 60,
             f"both tasks done (now {jobs(web, url)})")

    upload_id = url.rstrip("/").split("/")[-1]
    page = web.get(url).content.decode()
    assert f'<img src="/media/thumbs/{upload_id}.jpg"' in page
    assert 'http-equiv="refresh"' not in page
    thumbnail = os.path.join(settings.MEDIA_ROOT, "thumbs", f"{upload_id}.jpg")
    size = subprocess.run(["identify", "-format", "%wx%h", thumbnail], capture_output=True,
                          check=True, timeout=30).stdout
    assert size == b"200x150"  # 640x480 cut to fit 200x200

    wait_for(lambda: any(m.rcpt_tos == ["alice@example.com"] for m in smtp.messages), 10,
             "the e-mail")
    message = next(m for m in smtp.messages if m.rcpt_tos == ["alice@example.com"])
    parsed = email.message_from_bytes(message.content)
    assert parsed["Subject"] == "Your picture is in the gallery"
    assert parsed["From"] == "gallery@example.com"
    assert f"/status/{upload_id}/" in parsed.get_payload()


def test_an_upload_while_the_head_is_down_is_submitted_later(service, smtp, gallery, workdir):
    from django.conf import settings
    from django.test import Client
    web = Client()
    url, took = upload(web, make_jpeg(workdir, "later.jpg"), "bob@example.com")

    # The upload is saved and the view returned at once; the tasks wait for the head.
    assert took < settings.TASKPIPE_TIMEOUT
    start = time.monotonic()
    assert jobs(web, url) == {"thumbnail": "unavailable", "email": "unavailable"}
    assert time.monotonic() - start < settings.TASKPIPE_TIMEOUT
    assert "the task service is unavailable" in web.get(url).content.decode()

    s = service()
    s.start_sink()
    s.start_head()
    s.start_worker("--", sys.executable, HANDLER)
    # The status page finds no task under the upload's keys and submits them.
    wait_for(lambda: jobs(web, url) == {"thumbnail": "done", "email": "done"}, 60,
             "both tasks done")
    wait_for(lambda: any(m.rcpt_tos == ["bob@example.com"] for m in smtp.messages), 10,
             "the e-mail")
    assert sum(m.rcpt_tos == ["bob@example.com"] for m in smtp.messages) == 1


def test_the_handler_refuses_what_it_does_not_understand(gallery):
    for payload, status in (('{"kind": "format-disk"}', 2), ("not json", 2),
                            ('{"kind": "thumbnail", "source": "../../etc/passwd",'
                             ' "thumbnail": "t.jpg"}', 2),
                            ('{"kind": "thumbnail", "source": "missing.jpg",'
                             ' "thumbnail": "thumbs/x.jpg"}', 1)):
        done = subprocess.run([sys.executable, HANDLER, payload], capture_output=True,
                              timeout=60)
        assert done.returncode == status, (payload, done.stderr)
        assert done.stderr
