import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Every test runs torch on one intra-op thread: the graphs are tiny, so extra threads only add
    synchronisation, and on a busy 2-core machine that made a 5-epoch run 300x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
