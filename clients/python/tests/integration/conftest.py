"""pytest's side of the integration tests: the fixtures (see programs.py for the programs),
and the skip while the ventilator has no --serve, which CTest sees as exit status 77."""

import shutil
import tempfile

import pytest

from programs import HERE, Service, serve_hooks

(pytest_collection_modifyitems, pytest_runtest_logreport,
 pytest_sessionfinish) = serve_hooks(HERE)


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="tp-svc-")  # short: ipc:// paths are limited to ~100 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def service(workdir, request):
    """A Service to start as the test likes; its programs' logs are shown if the test fails."""
    made = []

    def make(**kwargs):
        s = Service(workdir, **kwargs)
        made.append(s)
        return s

    yield make
    failed = getattr(request.node, "rep_call", None)
    for s in made:
        if failed is not None and failed.failed:
            print(s.logs())
        s.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)
