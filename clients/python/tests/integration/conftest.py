"""pytest's side of the integration tests: the fixtures (see programs.py for the programs),
and the skip while the ventilator has no --serve, which CTest sees as exit status 77."""

import shutil
import tempfile

import pytest

from programs import HERE, SERVE_MISSING, Service

_skipped_for_serve = 0


def pytest_collection_modifyitems(config, items):
    if SERVE_MISSING:
        mark = pytest.mark.skip(reason=SERVE_MISSING)
        for item in items:
            if str(item.fspath).startswith(HERE):
                item.add_marker(mark)


def pytest_runtest_logreport(report):
    global _skipped_for_serve
    if report.when == "setup" and report.skipped and SERVE_MISSING:
        _skipped_for_serve += 1


def pytest_sessionfinish(session, exitstatus):
    if SERVE_MISSING and exitstatus == 0 and session.testscollected == _skipped_for_serve:
        session.exitstatus = 77


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
