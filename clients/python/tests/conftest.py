"""Fixtures of the client's unit tests: a fake head on an ipc:// endpoint in a private
directory, and a client connected to it. The package is imported from this source tree."""

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fake_head import FakeHead  # noqa: E402
import taskpipe  # noqa: E402


@pytest.fixture
def sockdir():
    # ipc:// paths are limited to about 100 bytes: a short directory, not pytest's tmp_path.
    path = tempfile.mkdtemp(prefix="tp-py-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def head(sockdir):
    h = FakeHead(f"ipc://{sockdir}/head").start()
    yield h
    h.close()


@pytest.fixture
def client(head):
    c = taskpipe.Client(head.endpoint, timeout=2.0, connect_timeout=2.0)
    yield c
    c.close()
