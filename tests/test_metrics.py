"""The evaluation metrics against hand-worked values, scikit-image's SSIM, invariances and random inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.ndimage import gaussian_filter

from backend.errors import EmptyDataError, InputError
from backend.evaluation import metrics as m

NAN = float("nan")


def test_hand_worked_tiny_images():
    reference = np.array([[300.0, 302.0], [304.0, NAN]])
    prediction = np.array([[301.0, 301.0], [306.0, 290.0]])  # the last pixel has no reference: ignored
    out = m.compute(prediction, reference)
    # errors 1, −1, 2 on three pixels
    assert out["n"] == 3
    assert out["rmse"] == pytest.approx(math.sqrt(6 / 3))
    assert out["mae"] == pytest.approx(4 / 3)
    assert out["bias"] == pytest.approx(2 / 3)
    assert out["ubrmse"] == pytest.approx(math.sqrt(2 - 4 / 9))
    assert out["r2"] == pytest.approx(1 - 6 / 8)  # reference mean 302, Σ(r − r̄)² = 8
    p, r = [301, 301, 306], [300, 302, 304]
    pm, rm = sum(p) / 3, sum(r) / 3
    cov = sum((a - pm) * (b - rm) for a, b in zip(p, r))
    cc = cov / math.sqrt(sum((a - pm) ** 2 for a in p) * sum((b - rm) ** 2 for b in r))
    assert out["cc"] == pytest.approx(cc) and out["cc"] == pytest.approx(0.8660254, abs=1e-6)
    assert out["psnr"] == pytest.approx(10 * math.log10(4 ** 2 / 2))  # range 304 − 300, MSE 2
    cos = sum(a * b for a, b in zip(p, r)) / math.sqrt(sum(a * a for a in p) * sum(b * b for b in r))
    assert out["sam"] == pytest.approx(math.degrees(math.acos(cos)), rel=1e-4)
    assert out["ergas"] == pytest.approx(100 * (30 / 926.625433) * math.sqrt(2) / 302)


def test_celsius_changes_only_the_scale_dependent_metrics():
    rng = np.random.default_rng(1)
    reference = 290 + gaussian_filter(rng.normal(0, 4, (40, 50)), 2)
    prediction = reference + rng.normal(0.5, 1, reference.shape)
    k, c = m.compute(prediction, reference, unit="K"), m.compute(prediction, reference, unit="C")
    for name in ("rmse", "mae", "bias", "ubrmse", "r2", "cc", "psnr"):
        assert k[name] == pytest.approx(c[name])
    mu_c = float(reference.mean()) - 273.15
    assert c["ergas"] == pytest.approx(100 * m.DEFAULT_RATIO * k["rmse"] / mu_c)
    assert c["sam"] > k["sam"]  # vectors near 17 °C turn more than near 290 K
    assert m.METRICS["sam"].unit_dependent and not m.METRICS["rmse"].unit_dependent
    with pytest.raises(InputError, match="Unknown metric unit"):
        m.compute(prediction, reference, unit="F")


@pytest.mark.parametrize("shape,unit", [((64, 80), "K"), ((37, 121), "C"), ((200, 33), "K")])
def test_ssim_equals_scikit_image(shape, unit):
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    rng = np.random.default_rng(sum(shape))
    reference = 295 + gaussian_filter(rng.normal(0, 6, shape), 3) + rng.normal(0, 0.5, shape)
    prediction = reference + gaussian_filter(rng.normal(0, 2, shape), 1.5)
    offset = 273.15 if unit == "C" else 0.0
    data_range = float(reference.max() - reference.min())
    expected = structural_similarity(prediction - offset, reference - offset, data_range=data_range,
                                     gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert m.compute(prediction, reference, unit=unit)["ssim"] == pytest.approx(expected, abs=1e-9)
    # Row blocks with a halo give the whole-image value.
    assert m.ssim(prediction - offset, reference - offset, data_range, rows=7) == pytest.approx(expected, abs=1e-9)


def test_ssim_ignores_nodata_neighbours():
    rng = np.random.default_rng(3)
    reference = 300 + gaussian_filter(rng.normal(0, 5, (60, 60)), 2)
    prediction = reference + rng.normal(0, 0.3, reference.shape)
    holed = prediction.copy()
    holed[20:30, 20:30] = NAN
    whole = m.ssim(prediction, reference, 10.0)
    with_hole = m.ssim(holed, reference, 10.0)
    assert np.isfinite(with_hole) and abs(with_hole - whole) < 0.02


def test_ssim_of_a_constant_reference_is_undefined():
    """Found by hypothesis: one valid pixel (range 0) once gave SSIM ≈ 2 from cancellation."""
    reference = np.full((3, 4), 250.0)
    prediction = reference + 4.0
    prediction[0, 1:] = NAN
    prediction[1:] = NAN
    out = m.compute(prediction, reference)
    assert np.isnan(out["ssim"]) and out["rmse"] == pytest.approx(4.0)


def test_invariances():
    rng = np.random.default_rng(4)
    reference = 290 + rng.normal(0, 3, (30, 30))
    same = m.compute(reference, reference)
    assert same["rmse"] == 0 and same["mae"] == 0 and same["bias"] == 0
    assert same["ssim"] == pytest.approx(1.0) and same["cc"] == pytest.approx(1.0)
    assert same["sam"] == pytest.approx(0.0, abs=1e-6) and same["psnr"] == float("inf")
    assert m.compute(2.5 * reference - 400, reference)["cc"] == pytest.approx(1.0)
    assert m.compute(3.0 * reference, reference)["sam"] == pytest.approx(0.0, abs=1e-6)
    assert m.compute(reference + 2.0, reference)["ubrmse"] == pytest.approx(0.0, abs=1e-9)


def test_multi_band_sam_and_ergas_are_per_band():
    rng = np.random.default_rng(5)
    reference = 290 + rng.normal(0, 3, (2, 20, 20))
    prediction = reference + rng.normal(0, 1, reference.shape)
    both = m.compute(prediction, reference)
    bands = [m.compute(prediction[b], reference[b]) for b in range(2)]
    assert both["sam"] == pytest.approx(np.mean([b["sam"] for b in bands]))
    expected = 100 * m.DEFAULT_RATIO * math.sqrt(np.mean([(b["rmse"] / reference[i].mean()) ** 2
                                                          for i, b in enumerate(bands)]))
    assert both["ergas"] == pytest.approx(expected)


def test_no_common_pixel_and_mismatched_shapes_are_refused():
    a = np.array([[300.0, NAN]])
    b = np.array([[NAN, 300.0]])
    with pytest.raises(EmptyDataError, match="no valid pixel in common"):
        m.compute(a, b)
    with pytest.raises(InputError, match="differ in size"):
        m.compute(np.zeros((3, 3)), np.zeros((3, 4)))


def test_breakdown_by_group():
    reference = np.array([[300.0, 300.0, 300.0, 300.0]])
    prediction = np.array([[301.0, 301.0, 298.0, NAN]])
    groups = np.array([[0, 0, 1, 1]])
    out = m.breakdown(prediction, reference, groups, lambda c: ("a", "b")[c])
    assert out["a"]["bias"] == pytest.approx(1.0) and out["a"]["n"] == 2
    assert out["b"]["bias"] == pytest.approx(-2.0) and out["b"]["n"] == 1


lst = st.floats(250, 330, allow_nan=False, width=32)
images = arrays(np.float64, st.tuples(st.integers(3, 24), st.integers(3, 24)), elements=lst)


@settings(max_examples=60, deadline=None)
@given(images, st.data())
def test_properties_on_random_images_with_nodata(reference, data):
    shape = reference.shape
    noise = data.draw(arrays(np.float64, shape, elements=st.floats(-8, 8, width=32)))
    holes_p = data.draw(arrays(np.bool_, shape))
    holes_r = data.draw(arrays(np.bool_, shape))
    prediction = np.where(holes_p, NAN, reference + noise)
    reference = np.where(holes_r, NAN, reference)
    valid = np.isfinite(prediction) & np.isfinite(reference)
    if not valid.any():
        with pytest.raises(EmptyDataError):
            m.compute(prediction, reference)
        return
    out = m.compute(prediction, reference)
    assert out["n"] == int(valid.sum())
    assert out["rmse"] >= out["mae"] - 1e-9 >= abs(out["bias"]) - 2e-9
    assert out["ubrmse"] ** 2 + out["bias"] ** 2 == pytest.approx(out["rmse"] ** 2, abs=1e-9)
    assert np.isnan(out["cc"]) or -1 - 1e-9 <= out["cc"] <= 1 + 1e-9
    assert np.isnan(out["ssim"]) or out["ssim"] <= 1 + 1e-9
    assert 0 <= out["sam"] <= 180
    # Only pixels valid in both count: blanking the others changes nothing.
    same = m.compute(np.where(valid, prediction, NAN), np.where(valid, reference, NAN))
    for name in ("rmse", "mae", "bias", "cc", "psnr", "sam", "ergas", "ssim"):
        assert same[name] == pytest.approx(out[name], nan_ok=True)
    swapped = m.compute(reference, prediction)
    assert swapped["rmse"] == pytest.approx(out["rmse"]) and swapped["sam"] == pytest.approx(out["sam"])
