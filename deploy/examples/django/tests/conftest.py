"""The example's test runs the real head, sink and worker (the launcher of the client's
integration tests, clients/python/tests/integration/programs.py), a local SMTP sink
(aiosmtpd, on a port the OS picks), and Django in this process with its data in a temporary
directory. Skipped (exit 77) while the ventilator has no --serve."""

import asyncio
import os
import shutil
import sys
import tempfile
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
REPO = os.path.abspath(os.path.join(PROJECT, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "clients", "python", "tests", "integration"))
sys.path.insert(0, PROJECT)

from programs import Service, serve_hooks  # noqa: E402

(pytest_collection_modifyitems, pytest_runtest_logreport,
 pytest_sessionfinish) = serve_hooks(HERE)


class SmtpSink:
    """An SMTP server on 127.0.0.1 that keeps every message it gets, in a thread."""

    def __init__(self):
        from aiosmtpd.smtp import SMTP
        self.messages = []
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        class Handler:
            async def handle_DATA(inner, server, session, envelope):
                self.messages.append(envelope)
                return "250 OK"

        async def serve():
            self._server = await self._loop.create_server(
                lambda: SMTP(Handler(), hostname="localhost"), "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()

        def run():
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the SMTP sink did not start")

    def close(self):
        async def stop():
            self._server.close()
            await self._server.wait_closed()
            self._loop.stop()
        asyncio.run_coroutine_threadsafe(stop(), self._loop)
        self._thread.join(5)


@pytest.fixture(scope="session")
def workdir():
    path = tempfile.mkdtemp(prefix="tp-dj-")  # short: ipc:// paths are limited to ~100 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def smtp():
    sink = SmtpSink()
    yield sink
    sink.close()


@pytest.fixture(scope="session")
def gallery(workdir, smtp):
    """Django set up for the example, once per session: its settings read the environment."""
    env = {
        "DJANGO_SETTINGS_MODULE": "thumbs_site.settings",
        "GALLERY_DATA": os.path.join(workdir, "data"),
        "TASKPIPE_ENDPOINT": f"ipc://{workdir}/head",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
    }
    os.environ.update(env)
    import django
    from django.core.management import call_command
    django.setup()
    call_command("migrate", verbosity=0)
    return env


@pytest.fixture
def service(workdir, gallery, request):
    made = []

    def make():
        s = Service(workdir)
        made.append(s)
        return s

    yield make
    for s in made:
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            print(s.logs())
        s.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)
