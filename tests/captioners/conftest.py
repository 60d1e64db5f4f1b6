"""The captioner tests' fixtures, once for every module: the local captioner (its ONNX models built once per
run, into the run's model directory, which the app's tests share), the test photos and the FIBO validator."""

from __future__ import annotations

import pytest

from tests.captioners import captioner_support as support


@pytest.fixture(scope="session")
def captioner(model_dir):
    return support.new_captioner(model_dir)


@pytest.fixture(scope="session")
def photos():
    return support.photos()


@pytest.fixture(scope="session")
def validator():
    return support.fibo_validator()
