import pytest

from nodemgr.errors import UsageError
from nodemgr.units import parse_size_mib, parse_sizes_mib


@pytest.mark.parametrize("text,unit,mib", [
    ("20", "G", 20480), ("20G", "G", 20480), ("20480M", "G", 20480), ("512", "M", 512),
    ("4G", "M", 4096), ("1T", "G", 1048576), ("1536K", "M", 2), ("2GiB", "M", 2048),
    ("1.5G", "M", 1536),
])
def test_sizes(text, unit, mib):
    assert parse_size_mib(text, unit) == mib


@pytest.mark.parametrize("bad", ["10X", "", "G", "-1G", "1,5G", "0"])
def test_bad_sizes_name_the_input(bad):
    with pytest.raises(UsageError) as exc:
        parse_size_mib(bad)
    assert "invalid size" in str(exc.value)


def test_size_list():
    assert parse_sizes_mib("20G,10") == [20480, 10240]
    with pytest.raises(UsageError):
        parse_sizes_mib("20G,,10")
