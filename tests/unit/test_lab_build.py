"""How the lab's binaries are built and found: the go.mod replace blocks of the wrapper modules,
Prometheus's module-to-release version, the LAB_BIN_DIR override, and the build report.
Nothing is built here (no `go` is run)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from vllm_stack_e2e.lab import build

# The shape of k8s.io/kubernetes's go.mod: its staging modules are replaced by local folders,
# which a module that requires k8s.io/kubernetes cannot see.
KUBERNETES_GOMOD = """module k8s.io/kubernetes

go 1.25.0

godebug default=go1.25

require (
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/apiextensions-apiserver => ./staging/src/k8s.io/apiextensions-apiserver
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/kube-aggregator => ./staging/src/k8s.io/kube-aggregator
)
"""

# The shape of KEDA's go.mod: pins that its build relies on, with a comment line.
KEDA_GOMOD = """module github.com/kedacore/keda/v2

go 1.26.0

replace (
\t// pin k8s.io to v0.35.5 & sigs.k8s.io/controller-runtime to v0.23.3
\tgithub.com/google/cel-go => github.com/google/cel-go v0.26.0
\tk8s.io/api => k8s.io/api v0.35.5
\tk8s.io/gengo/v2 => k8s.io/gengo/v2 v2.0.0-20250922181213-ec3ebc5fd46b
\tsigs.k8s.io/controller-runtime => sigs.k8s.io/controller-runtime v0.23.3
)

require (
\tgithub.com/google/cel-go v0.26.0
)
"""


def test_staging_replaces_become_released_module_versions() -> None:
    block = build._replace_block(build.COMPONENTS["kubernetes"], KUBERNETES_GOMOD)
    assert block == (
        "replace (\n"
        "\tk8s.io/api => k8s.io/api v0.35.4\n"
        "\tk8s.io/apiextensions-apiserver => k8s.io/apiextensions-apiserver v0.35.4\n"
        "\tk8s.io/client-go => k8s.io/client-go v0.35.4\n"
        "\tk8s.io/kube-aggregator => k8s.io/kube-aggregator v0.35.4\n"
        ")\n"
    )
    assert "./staging" not in block


def test_staging_version_follows_the_kubernetes_version() -> None:
    assert build.COMPONENTS["kubernetes"].version == f"v{build.KUBERNETES_VERSION}"
    minor_patch = build.KUBERNETES_VERSION.split(".", 1)[1]
    block = build._replace_block(build.COMPONENTS["kubernetes"], KUBERNETES_GOMOD)
    assert all(line.endswith(f" v0.{minor_patch}") for line in block.splitlines()[1:-1])


def test_copy_keeps_the_upstream_replace_block_without_comments() -> None:
    block = build._replace_block(build.COMPONENTS["keda"], KEDA_GOMOD)
    assert block == (
        "replace (\n"
        "\tgithub.com/google/cel-go => github.com/google/cel-go v0.26.0\n"
        "\tk8s.io/api => k8s.io/api v0.35.5\n"
        "\tk8s.io/gengo/v2 => k8s.io/gengo/v2 v2.0.0-20250922181213-ec3ebc5fd46b\n"
        "\tsigs.k8s.io/controller-runtime => sigs.k8s.io/controller-runtime v0.23.3\n"
        ")\n"
    )


def test_no_replace_block_for_none_or_when_upstream_has_none() -> None:
    assert build._replace_block(build.COMPONENTS["etcd"], KEDA_GOMOD) == ""
    assert build._replace_block(build.COMPONENTS["keda"], "module x\n\ngo 1.26.0\n") == ""


def test_replace_blocks_per_component() -> None:
    assert {name: c.replaces for name, c in build.COMPONENTS.items()} == {
        "kubernetes": "staging", "etcd": "none", "kwok": "none", "keda": "copy", "prometheus": "none",
        "prometheus-operator": "none", "coredns": "none"}


@pytest.mark.parametrize(("module", "release"), [("0.316.0", "3.16.0"), ("0.300.1", "3.0.1"), ("0.305.12", "3.5.12")])
def test_prometheus_release_from_module_version(module: str, release: str) -> None:
    assert build._prometheus_release(module) == release


def test_prometheus_release_is_stamped_into_its_binary() -> None:
    assert build.prometheus_release() == "3.16.0"
    ldflags = build.COMPONENTS["prometheus"].ldflags
    assert "-X github.com/prometheus/common/version.Version=3.16.0" in ldflags


def test_prometheus_is_built_with_kubernetes_discovery_under_its_own_key() -> None:
    """The operator's generated configuration discovers targets through the API server; a cache
    built before that (static/file discovery only) is not reused."""
    prometheus = build.COMPONENTS["prometheus"]
    assert "enable_kubernetes_sd" in prometheus.tags and prometheus.key.endswith("-k8ssd")


def test_coredns_is_built_with_only_the_plugins_its_corefile_names() -> None:
    main = build.COMPONENTS["coredns"].main_go or ""
    plugins = {line.split('"')[1].rsplit("/", 1)[-1] for line in main.splitlines() if "coredns/plugin/" in line}
    assert plugins == {"errors", "health", "kubernetes", "log", "ready", "template"}


def test_component_keys_are_versioned_cache_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_STACK_E2E_CACHE", str(tmp_path))
    for component in build.COMPONENTS.values():
        flavor = f"-{component.flavor}" if component.flavor else ""
        assert component.key == f"{component.name}-{component.version}{flavor}"
        assert build.bin_dir(component) == tmp_path / "bin" / component.key


# ---- LAB_BIN_DIR -------------------------------------------------------------------------------
def executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache with nothing built, so only LAB_BIN_DIR can make a component available."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("VLLM_STACK_E2E_CACHE", str(cache))
    monkeypatch.delenv("LAB_BIN_DIR", raising=False)
    return cache


def test_lab_bin_dir_wins_when_every_binary_is_there(empty_cache: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    prebuilt = tmp_path / "prebuilt"
    prebuilt.mkdir()
    for name in ("kwok", "kwokctl"):
        executable(prebuilt / name)
    assert not build.is_built("kwok")
    monkeypatch.setenv("LAB_BIN_DIR", str(prebuilt))
    assert build.is_built("kwok")
    assert build.ensure("kwok", echo=lambda _m: pytest.fail("ensure() must not build when LAB_BIN_DIR has it")) == {
        "kwok": prebuilt / "kwok", "kwokctl": prebuilt / "kwokctl"}
    assert not build.is_built("keda"), "the override is per component"


@pytest.mark.parametrize("problem", ["missing", "not-executable"])
def test_lab_bin_dir_is_ignored_when_a_binary_is_missing(empty_cache: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, problem: str) -> None:
    prebuilt = tmp_path / "prebuilt"
    prebuilt.mkdir()
    executable(prebuilt / "kube-apiserver")
    executable(prebuilt / "kube-scheduler")
    if problem == "not-executable":
        (prebuilt / "kube-controller-manager").write_text("not a program")
    monkeypatch.setenv("LAB_BIN_DIR", str(prebuilt))
    assert build._override(build.COMPONENTS["kubernetes"]) is None
    assert not build.is_built("kubernetes")
    assert not any(row["override"] for row in build.build_report())


def test_cached_build_is_found_without_lab_bin_dir(empty_cache: Path) -> None:
    component = build.COMPONENTS["etcd"]
    out = build.bin_dir(component)
    out.mkdir(parents=True)
    executable(out / "etcd")
    (out / ".complete").write_text(json.dumps({"seconds": 61.5, "built_at": 0}))
    assert build.is_built("etcd")
    assert build.ensure("etcd", echo=lambda _m: pytest.fail("ensure() must not rebuild a complete cache")) == {
        "etcd": out / "etcd"}


# ---- build report ------------------------------------------------------------------------------------
def test_build_report_has_one_row_per_component(empty_cache: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    etcd = build.bin_dir(build.COMPONENTS["etcd"])
    etcd.mkdir(parents=True)
    (etcd / ".complete").write_text(json.dumps({"seconds": 61.5, "built_at": 0}))
    prebuilt = tmp_path / "prebuilt"
    prebuilt.mkdir()
    for name in build.COMPONENTS["kwok"].binaries:
        executable(prebuilt / name)
    monkeypatch.setenv("LAB_BIN_DIR", str(prebuilt))

    rows = {row["component"]: row for row in build.build_report()}
    assert set(rows) == {c.key for c in build.COMPONENTS.values()}
    for row in rows.values():
        assert set(row) == {"component", "built", "seconds", "override"}
    assert rows[build.COMPONENTS["etcd"].key] == {"component": build.COMPONENTS["etcd"].key, "built": True,
                                                  "seconds": 61.5, "override": False}
    assert rows[build.COMPONENTS["kwok"].key] == {"component": build.COMPONENTS["kwok"].key, "built": False,
                                                  "seconds": None, "override": True}
    assert rows[build.COMPONENTS["keda"].key]["built"] is False and rows[build.COMPONENTS["keda"].key]["seconds"] is None


def test_cache_size_counts_files_under_bin(empty_cache: Path) -> None:
    assert build.cache_size_mb() == 0.0
    out = build.bin_dir(build.COMPONENTS["etcd"])
    out.mkdir(parents=True)
    (out / "etcd").write_bytes(b"\0" * (3 << 20))
    assert build.cache_size_mb() == pytest.approx(3.0)


def test_build_without_go_says_what_to_install(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vllm_stack_e2e.errors import ProvisionError

    monkeypatch.setenv("PATH", str(empty_cache))
    with pytest.raises(ProvisionError, match="`go` command is not on PATH"):
        build.ensure("etcd", echo=lambda _m: None)
    assert not (empty_cache / "build").exists(), "nothing is prepared before the missing tool is reported"


def _fake_binary(folder: Path, name: str, prints: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{prints}'\n")
    path.chmod(0o755)


def test_binaries_on_path_at_the_pinned_version_are_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vllm_stack_e2e.lab import build

    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        _fake_binary(tmp_path, name, f"Kubernetes v{build.KUBERNETES_VERSION}")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    found = build._on_path(build.COMPONENTS["kubernetes"])
    assert found == {name: tmp_path / name for name in build.COMPONENTS["kubernetes"].binaries}


def test_binaries_on_path_at_another_version_are_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vllm_stack_e2e.lab import build

    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        _fake_binary(tmp_path, name, "Kubernetes v1.31.0")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert build._on_path(build.COMPONENTS["kubernetes"]) is None
    assert build._on_path(build.COMPONENTS["keda"]) is None  # no version flag: never taken from PATH


def test_a_long_build_step_says_what_it_does_at_least_every_period(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold build is quiet for minutes; the user sees a line per period with the count so far."""
    monkeypatch.setattr(build, "PROGRESS_EVERY", 0.2)
    lines: list[str] = []
    log = tmp_path / "build.log"
    # A stand-in for `go get`: two downloads, a pause long enough for two progress periods, a third.
    script = "echo 'go: downloading a v1'; echo 'go: downloading b v1'; sleep 0.7; echo 'go: downloading c v1'"
    build._run(["sh", "-c", script], tmp_path, log, echo=lines.append, label="kwok-v0.8.0",
               progress=build._downloads)
    assert len(lines) >= 2, lines
    assert lines[0].startswith("  kwok-v0.8.0: downloading modules, 2 so far, ") and str(log) in lines[0], lines


def test_compile_progress_counts_the_packages_go_build_prints() -> None:
    count = build._compiled(120)
    assert count("k8s.io/api/core/v1\nk8s.io/apimachinery/pkg/util/sets\n# k8s.io/x\n") == \
        "compiled 2 packages of at most 120"
