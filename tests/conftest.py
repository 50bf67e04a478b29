import os

import numpy  # noqa: F401  (load OpenBLAS before limiting its threads)
import pytest
from threadpoolctl import threadpool_limits

os.environ.setdefault("HF_HUB_OFFLINE", "1")
threadpool_limits(1)  # one BLAS thread: faster than two fighting over a loaded 2-core machine


@pytest.fixture(scope="session")
def model():
    from workloads.model import load_model

    return load_model()
