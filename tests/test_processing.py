"""The Processing algorithms in-process (pytest-qgis): parameters, outputs, styling, errors."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from qgis.core import (
    QgsApplication,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
)

from backend.io.readers import read_lst
from lst_fusion_plugin import dependencies
from lst_fusion_plugin.styling import apply_lst_style


def _run(alg, params, feedback=None):
    import processing

    return processing.run(f"lst_fusion:{alg}", params, feedback=feedback or QgsProcessingFeedback())


def test_provider_lists_algorithms_with_groups_and_help(provider):
    algs = {a.name(): a for a in provider.algorithms()}
    assert {"generate_sample_dataset", "import_lst"} <= set(algs)
    assert algs["import_lst"].group() == "1 · Data"
    assert "QA_PIXEL" in algs["import_lst"].shortHelpString()
    assert not provider.icon().isNull()
    assert provider.longName().startswith("LST Fusion 0.")


def test_generate_then_import(provider, tmp_path):
    res = _run("generate_sample_dataset", {"OUTPUT_FOLDER": str(tmp_path / "s"), "WIDTH": 48, "HEIGHT": 40,
                                           "N_DATES": 2, "SEED": 3})
    assert res["DATE_COUNT"] == 2 and (tmp_path / "s" / "manifest.json").exists()
    st = next((tmp_path / "s" / "landsat").glob("*ST_B10.TIF"))
    out = tmp_path / "decoded.tif"
    res = _run("import_lst", {"INPUT": str(st), "OUTPUT": str(out)})
    assert res["OUTPUT"] == str(out) and res["DATE_OUT"] == "2013-03-18"
    np.testing.assert_array_equal(read_lst(out).data, read_lst(st).data)
    assert 0 < res["VALID_FRACTION"] <= 1


def test_loaded_output_is_styled(provider, layer_tree_view, tmp_path, sample_dataset):
    import processing

    folder, manifest = sample_dataset
    project = QgsProject.instance()
    project.removeAllMapLayers()
    res = processing.runAndLoadResults(
        "lst_fusion:import_lst",
        {"INPUT": str(folder / manifest["dates"][0]["modis_lst"]), "OUTPUT": str(tmp_path / "m.tif"),
         "OUTPUT_UNIT": 1},
        feedback=QgsProcessingFeedback())
    layers = project.mapLayersByName(f"LST {manifest['dates'][0]['date']} MOD11A1 (°C)")
    assert layers, [lyr.name() for lyr in project.mapLayers().values()]
    layer = layers[0]
    assert layer.renderer().type() == "singlebandpseudocolor"
    shader = layer.renderer().shader().rasterShaderFunction()
    assert -30 < shader.minimumValue() < shader.maximumValue() < 60  # °C, stretched to the data
    assert len(shader.colorRampItemList()) >= 5
    assert res["OUTPUT"] == str(tmp_path / "m.tif")
    project.removeAllMapLayers()


def test_bad_input_is_a_clear_error_and_writes_nothing(provider, tmp_path):
    photo = tmp_path / "photo.tif"
    with rasterio.open(photo, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=Affine(1, 0, 0, 0, -1, 8)) as dst:
        dst.write(np.zeros((8, 8), np.uint8), 1)
    out = tmp_path / "out.tif"
    with pytest.raises(QgsProcessingException, match="photo.tif: not a recognised LST product"):
        _run("import_lst", {"INPUT": str(photo), "OUTPUT": str(out)})
    with pytest.raises(QgsProcessingException, match="Incorrect parameter value for INPUT|file not found"):
        _run("import_lst", {"INPUT": str(tmp_path / "missing.hdf"), "OUTPUT": str(out)})
    assert not out.exists()


def test_bad_date_parameter(provider, tmp_path, sample_dataset):
    folder, manifest = sample_dataset
    with pytest.raises(QgsProcessingException, match="DATE: .*YYYY-MM-DD"):
        _run("import_lst", {"INPUT": str(folder / manifest["dates"][0]["truth"]), "DATE": "18/03/2013",
                            "OUTPUT": str(tmp_path / "x.tif")})
    with pytest.raises(QgsProcessingException, match="START_DATE: .*YYYY-MM-DD"):  # the one parameter named
        _run("generate_sample_dataset", {"OUTPUT_FOLDER": str(tmp_path / "s"), "START_DATE": "spring"})


def test_cancelled_run_leaves_no_output(provider, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        _run("generate_sample_dataset", {"OUTPUT_FOLDER": str(tmp_path / "s"), "WIDTH": 32, "HEIGHT": 32,
                                         "N_DATES": 2}, feedback)
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_missing_package_message(provider, tmp_path, monkeypatch):
    monkeypatch.setitem(dependencies.REQUIRED, "no_such_pkg_xyz", ("no_such_pkg_xyz", "python3-no-such", "every stage"))
    problem = dependencies.backend_problem()
    assert "no_such_pkg_xyz" in problem and "apt-get install python3-no-such" in problem
    # A package the installer can add: the one command that installs its group, with QGIS's Python.
    hint = dependencies.install_hint(["numba", "torch"], dependencies.OPTIONAL)
    assert "installer.py --group fusion --group training --target" in hint and "numba (for fusion" in hint
    with pytest.raises(QgsProcessingException, match="missing Python packages"):
        _run("generate_sample_dataset", {"OUTPUT_FOLDER": str(tmp_path / "s"), "WIDTH": 16, "HEIGHT": 16})


def test_venv_discovery(tmp_path, monkeypatch):
    import sys

    site = tmp_path / "venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    site.mkdir(parents=True)
    monkeypatch.setenv(dependencies.ENV_VAR, str(tmp_path / "venv"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert site in dependencies.add_paths()
    assert str(site) in sys.path


def test_plugin_registers_and_unloads(qgis_iface, qgis_processing):
    from lst_fusion_plugin import classFactory

    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("lst_fusion")
    if existing is not None:
        registry.removeProvider(existing)
    plugin = classFactory(qgis_iface)
    plugin.initProcessing()
    assert registry.providerById("lst_fusion") is not None
    plugin.unload()
    assert registry.providerById("lst_fusion") is None


def test_style_applies_only_to_rasters(sample_dataset):
    folder, manifest = sample_dataset
    layer = QgsRasterLayer(str(folder / manifest["dates"][0]["truth"]), "t")
    assert apply_lst_style(layer)
    assert layer.renderer().type() == "singlebandpseudocolor"
    assert not apply_lst_style(None)
