from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render

from . import tasks
from .forms import UploadForm
from .models import Upload


def upload(request):
    """The upload form. A valid upload is saved, its tasks are submitted once the transaction
    has committed (a worker must never look for a row or a file that is not there yet), and the
    browser goes to the status page at once: nothing here waits for a task."""
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            item = form.save()
            transaction.on_commit(lambda: tasks.enqueue(item))
        return redirect("status", item.id)
    return render(request, "gallery/upload.html", {"form": form})


def status(request, pk):
    """The state of an upload's tasks: queued, running, done (with the thumbnail) or failed;
    `?format=json` for scripts."""
    item = get_object_or_404(Upload, pk=pk)
    jobs = []
    for kind in tasks.kinds(item):
        shown, result = tasks.state(item, kind)
        jobs.append({"kind": kind, "state": shown,
                     "detail": result.stderr.decode(errors="replace")[-500:]
                     if result is not None and shown == "failed" else ""})
    thumbnail_done = jobs[0]["state"] == "done"
    if request.GET.get("format") == "json":
        return JsonResponse({"id": str(item.id), "jobs": jobs,
                             "thumbnail": item.thumbnail_name if thumbnail_done else None})
    finished = all(j["state"] in ("done", "failed", "cancelled") for j in jobs)
    return render(request, "gallery/status.html", {
        "upload": item, "jobs": jobs, "thumbnail_done": thumbnail_done, "refresh": not finished})
