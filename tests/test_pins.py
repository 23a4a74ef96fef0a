from pytest_chroma_compat.engine import pins


def test_every_rule_says_what_it_prevents():
    assert pins.rules()
    for rule in pins.rules():
        assert rule.prevents and (rule.constraints or rule.add), rule.id


def test_rules_apply_by_range_and_change_the_cache_key():
    old = pins.for_version("0.4.24")
    assert "numpy-1" in {r.id for r in old}
    assert "numpy-1" not in {r.id for r in pins.for_version("0.4.15")}  # measured: imports with numpy 2
    assert pins.for_version("1.5.9") == []
    assert pins.digest(old) != pins.digest([])


def test_releases_that_cannot_work_here_are_refused_with_the_reason():
    import pytest

    from pytest_chroma_compat.common.errors import InstallFailed
    from pytest_chroma_compat.engine import envs

    with pytest.raises(InstallFailed, match="duckdb==0.5.1"):
        envs.ensure("0.3.1")
