import pytest

from fabric_ops.config.waves import plan_waves
from fabric_ops.errors import FabricOpsError

NAMES = [f"leaf{i}" for i in range(1, 11)]


@pytest.mark.parametrize(
    ("canary", "percent", "sizes"),
    [
        (1, 25, [1, 3, 3, 3]),
        (2, 50, [2, 4, 4]),
        (0, 100, [10]),
        (1, 100, [1, 9]),
        (10, 25, [10]),
        (1, 1, [1] * 10),
    ],
)
def test_wave_sizes(canary, percent, sizes):
    waves = plan_waves(NAMES, canary, percent)
    assert [len(w) for w in waves] == sizes
    assert [name for wave in waves for name in wave] == NAMES  # every device once, order kept


def test_bad_policy_is_refused():
    with pytest.raises(FabricOpsError, match="wave_percent must be 1-100"):
        plan_waves(NAMES, 1, 0)
    with pytest.raises(FabricOpsError, match="canary_count cannot be negative"):
        plan_waves(NAMES, -1, 50)
