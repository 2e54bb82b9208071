"""The adapter registry: entry-point plugins, the competitions package scan, and the errors for broken plugins,
duplicate names and misnamed entry points."""

import dataclasses
import subprocess
import sys
import textwrap

import pytest

from kit.adapters import registry
from kit.adapters.registry import get_adapter, list_adapters, register_adapter
from kit.errors import KitError

BUILT_IN = [
    "busi",
    "chest-xray",
    "ham10000",
    "head-ct",
    "intel-image-classification",
    "isic",
    "pcam",
    "plant-seedlings",
]


@pytest.fixture
def fresh_registry(monkeypatch):
    """An empty, not yet loaded registry for one test; the real one comes back afterwards."""
    monkeypatch.setattr(registry, "_ADAPTERS", {})
    monkeypatch.setattr(registry, "_SOURCES", {})
    monkeypatch.setattr(registry, "_loaded", False)
    return monkeypatch


def _install_plugin(root, monkeypatch, module: str, source: str, entry_points: str):
    """A third-party distribution as pip leaves it: a module plus ``<name>.dist-info`` on sys.path."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{module.replace('_', '-')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[kit.adapters]\n{entry_points}\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, module, raising=False)


PLUGIN = """
    from competitions.synthetic import pcam as synthetic
    from kit.adapters.base import Adapter

    LESIONS = Adapter(name="lesions", slug="someone/lesions", train_dir="train", test_dir="test",
                      labels_csv="train.csv", sample_submission_csv="sample_submission.csv", id_column="id",
                      label_column="label", image_suffix=".png", image_format=None, image_shape=(64, 64, 3),
                      metric="roc_auc", synthesize=synthetic.synthesize, fit="stretch")
"""


def test_built_in_adapters_are_found(fresh_registry):
    assert list_adapters() == BUILT_IN
    assert get_adapter("pcam").slug == "histopathologic-cancer-detection"


def test_a_third_party_plugin_is_found_through_its_entry_point(fresh_registry, tmp_path):
    _install_plugin(tmp_path, fresh_registry, "kit_lesions_plugin", PLUGIN, "lesions = kit_lesions_plugin:LESIONS")
    adapter = get_adapter("lesions")
    assert adapter.slug == "someone/lesions" and adapter.image_shape == (64, 64, 3)
    assert list_adapters() == sorted(BUILT_IN + ["lesions"])
    assert registry._SOURCES["lesions"] == "entry point lesions = kit_lesions_plugin:LESIONS"


def test_a_plugin_that_fails_to_import_names_its_entry_point_and_the_fix(fresh_registry, tmp_path):
    _install_plugin(
        tmp_path,
        fresh_registry,
        "kit_broken_plugin",
        "import not_a_module_anywhere\n",
        "broken = kit_broken_plugin:BROKEN",
    )
    with pytest.raises(KitError) as caught:
        get_adapter("pcam")
    message = str(caught.value)
    assert "broken = kit_broken_plugin:BROKEN" in message and "kit-broken-plugin" in message
    assert "expected it to import, got ModuleNotFoundError" in message and "not_a_module_anywhere" in message
    assert "Fix: install what it needs, or `pip uninstall kit-broken-plugin`" in message
    with pytest.raises(KitError, match="kit_broken_plugin"):  # still reported on the next lookup
        list_adapters()


def test_an_entry_point_must_carry_the_adapters_name(fresh_registry, tmp_path):
    _install_plugin(tmp_path, fresh_registry, "kit_misnamed_plugin", PLUGIN, "lesion = kit_misnamed_plugin:LESIONS")
    with pytest.raises(KitError, match=r"got adapter 'lesions'. Fix: declare it as `lesions = kit_misnamed"):
        list_adapters()


def test_an_entry_point_must_be_an_adapter(fresh_registry, tmp_path):
    _install_plugin(
        tmp_path, fresh_registry, "kit_wrong_plugin", "LESIONS = 'lesions'\n", "lesions = kit_wrong_plugin:LESIONS"
    )
    with pytest.raises(KitError, match="expected a kit.adapters.base.Adapter, got str. Fix:"):
        list_adapters()


def test_two_adapters_with_one_name_is_an_error(fresh_registry, tmp_path):
    clash = PLUGIN.replace('name="lesions"', 'name="pcam"')
    _install_plugin(tmp_path, fresh_registry, "kit_clash_plugin", clash, "pcam = kit_clash_plugin:LESIONS")
    with pytest.raises(KitError, match="expected one adapter per name, got two named 'pcam'") as caught:
        list_adapters()
    assert "kit_clash_plugin:LESIONS" in str(caught.value) and "competitions.pcam" in str(caught.value)
    assert "Fix: rename one" in str(caught.value)


def test_a_module_dropped_into_the_package_is_found_without_an_entry_point(fresh_registry, tmp_path):
    package = tmp_path / "kit_test_competitions"
    (package / "synthetic").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Adapters."""\n')
    (package / "lesions.py").write_text(textwrap.dedent(PLUGIN))
    (package / "synthetic" / "__init__.py").write_text("raise RuntimeError('synthetic is not scanned')\n")
    (package / "_private.py").write_text("raise RuntimeError('private modules are not scanned')\n")
    fresh_registry.syspath_prepend(str(tmp_path))
    fresh_registry.setattr(registry, "BUILTIN_PACKAGE", "kit_test_competitions")
    assert get_adapter("lesions").slug == "someone/lesions"
    assert registry._SOURCES["lesions"] == "module kit_test_competitions.lesions"


def test_a_package_module_that_fails_to_import_says_which(fresh_registry, tmp_path):
    package = tmp_path / "kit_bad_competitions"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "typo.py").write_text("Adapter(\n")
    fresh_registry.syspath_prepend(str(tmp_path))
    fresh_registry.setattr(registry, "BUILTIN_PACKAGE", "kit_bad_competitions")
    with pytest.raises(
        KitError,
        match=r"adapter module kit_bad_competitions.typo: expected it to import, got "
        r"SyntaxError.*Fix: repair or remove kit_bad_competitions/typo.py",
    ):
        list_adapters()


def test_register_adapter_by_hand(fresh_registry):
    copy = register_adapter(dataclasses.replace(get_adapter("pcam"), name="pcam-tiny"))
    assert get_adapter("pcam-tiny") is copy and register_adapter(copy) is copy  # the same object twice: fine
    with pytest.raises(KitError, match="two named 'pcam'"):
        register_adapter(dataclasses.replace(copy, name="pcam"))


def test_unknown_names_list_the_known_ones(fresh_registry):
    known = ", ".join(BUILT_IN)
    with pytest.raises(KitError, match=f"unknown competition 'nope'; known: {known}. Fix:"):
        get_adapter("nope")


def test_the_registry_is_a_leaf_and_adapters_load_on_first_use():
    # a fresh interpreter: importing the engine's modules must not import any adapter (no cycle through them)
    code = (
        "import sys, kit.adapters.registry, kit.synth, kit.ingest.decode; "
        "assert not [m for m in sys.modules if m.startswith('competitions')], sorted(sys.modules); "
        "from kit.adapters.registry import list_adapters; print(list_adapters())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(BUILT_IN)
