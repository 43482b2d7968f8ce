"""``static_fields`` (srgpu/data/predictors.py) on a 2 x 3 grid, every number by hand from the
IGBP table (docs: bins 1 evergreen broadleaf, 2 other forests, 3 shrublands, 4 savannas and
grasslands, 5 croplands; water 0 and 17 is not land): land fraction, majority bin, bin shares
and the domain for each combination of land-cover inputs (issue 21: the mutation run of
``static_fields``)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from srgpu.data.drivers.roles import Found
from srgpu.data.predictors import static_fields
from srgpu.errors import InputError

LAT = np.array([10.0, 11.0])
LON = np.array([20.0, 21.0, 22.0])  # not 0, 1, 2: a missing coordinate would read so
DIMS = ("lat", "lon")
R = 6371e3


def _found(role, values, dims, *, units=None, coords=None):
    attrs = {} if units is None else {"units": units}
    da = xr.DataArray(np.asarray(values, dtype=float), dims=dims, attrs=attrs,
                      coords={"lat": LAT, "lon": LON, **(coords or {})})  # fmt: skip
    return Found(role=role, label=f"{role}.nc", name=f"v_{role}", da=da)


def _fractions(per_cell: dict[tuple[int, int], dict[int, float]], codes, *, units="1"):
    f = np.zeros((len(codes), 2, 3))
    for (i, j), shares in per_cell.items():
        for code, share in shares.items():
            f[codes.index(code), i, j] = share
    return _found("land_cover_fraction", f, ("type", *DIMS), units=units,
                  coords={"type": list(codes)})  # fmt: skip


def _area():
    """Cells 1 x 1 degree at 10 and 11 N: R^2 dlon (sin(top) - sin(bottom))."""
    lat = np.deg2rad([[9.5, 10.5], [10.5, 11.5]])
    band = np.sin(lat[:, 1]) - np.sin(lat[:, 0])
    return np.repeat((R**2 * np.deg2rad(1.0) * band)[:, None], 3, axis=1)


ALL = np.ones((2, 3), dtype=bool)


def _bins(out):
    assert out["bin_fraction"].dims == ("bin", *DIMS)
    assert out["bin_fraction"]["bin"].values.tolist() == [1, 2, 3, 4, 5]
    return out["bin_fraction"].values


def test_class_fractions_alone():
    """Codes 0 (water), 2 (bin 1), 10 (bin 4), 12 (bin 5), 16 (barren, no bin):
    (0,0) all water: no land, bin 0, outside;
    (0,1) 0.6 bin 1 + 0.4 barren: land 1, bin 1, vegetated 0.6 >= 0.5;
    (0,2) 0.3 bin 4 + 0.4 barren + 0.3 water: land 0.7, barren the majority (bin 0),
          vegetated 0.3 / 0.7 < 0.5: outside;
    (1,0) 0.35 bin 4 + 0.3 bin 5 + 0.35 barren: a tie of barren and bin 4 goes to "no bin",
          but 0.65 of the land is vegetated, so the cell takes its largest bin, 4;
    (1,1) 0.5 bin 5 + 0.5 water: land 0.5, bin 5, vegetated; its predictors are not finite;
    (1,2) 0.25 bin 4 + 0.25 barren + 0.5 water: vegetated share exactly 0.5: in, bin 4."""
    codes = [0, 2, 10, 12, 16]
    f = _fractions(
        {
            (0, 0): {0: 1.0},
            (0, 1): {2: 0.6, 16: 0.4},
            (0, 2): {10: 0.3, 16: 0.4, 0: 0.3},
            (1, 0): {10: 0.35, 12: 0.3, 16: 0.35},
            (1, 1): {12: 0.5, 0: 0.5},
            (1, 2): {10: 0.25, 16: 0.25, 0: 0.5},
        },
        codes,
    )
    finite = np.array([[True, True, True], [True, False, True]])
    out = static_fields({"land_cover_fraction": f}, lat=LAT, lon=LON, finite=finite)
    land = out["land_fraction"]
    assert land.dtype == np.float32 and land.dims == DIMS
    np.testing.assert_allclose(land.values, [[0, 1, 0.7], [1, 0.5, 0.5]], rtol=1e-7)
    assert out["veg_bin"].dtype == np.int8
    assert out["veg_bin"].values.tolist() == [[0, 1, 0], [4, 5, 4]]
    b = _bins(out)
    assert b.dtype == np.float32
    want = np.zeros((5, 2, 3))
    want[0, 0, 1] = 0.6
    want[3, 0, 2], want[3, 1, 0], want[4, 1, 0] = 0.3, 0.35, 0.3
    want[4, 1, 1], want[3, 1, 2] = 0.5, 0.25
    np.testing.assert_allclose(b, want, rtol=1e-7, atol=0)
    assert out["domain"].values.tolist() == [[False, True, False], [True, False, True]]
    np.testing.assert_allclose(out["cell_area"].values, _area(), rtol=1e-12)
    assert out["cell_area"].dims == DIMS
    assert out["cell_area"]["lat"].values.tolist() == LAT.tolist()


def test_class_fractions_in_percent_without_class_codes_and_missing_shares():
    """Fractions in % on a class axis without coordinates: the classes are numbered 1..n
    (here 1..17, so the 17th is water); NaN shares count as 0. (0,0): 60 % class 2 (bin 1) and
    40 % class 17 (water): land 0.6, bin 1. (0,1): 50 % class 9 (bin 4), NaN elsewhere: land
    0.5, bin 4. Other cells: 100 % class 16 (barren): land 1, no bin, outside."""
    f = np.zeros((17, 2, 3))
    f[15] = 100.0
    f[:, 0, 0] = 0.0
    f[1, 0, 0], f[16, 0, 0] = 60.0, 40.0
    f[:, 0, 1] = np.nan
    f[8, 0, 1] = 50.0
    found = _found("land_cover_fraction", f, ("type", *DIMS), units="%")
    out = static_fields({"land_cover_fraction": found}, lat=LAT, lon=LON, finite=ALL)
    np.testing.assert_allclose(out["land_fraction"].values, [[0.6, 0.5, 1], [1, 1, 1]], rtol=1e-7)
    assert out["veg_bin"].values.tolist() == [[1, 4, 0], [0, 0, 0]]
    assert out["domain"].values.tolist() == [[True, True, False], [False, False, False]]
    b = _bins(out)
    assert b[0, 0, 0] == pytest.approx(0.6) and b[3, 0, 1] == pytest.approx(0.5)
    assert b.sum() == pytest.approx(1.1)


def test_land_fraction_map_with_majority_classes():
    """sftlf in % (NaN: 0; -0.05 % and 100.05 %, within the 0.1-point rounding allowed,
    clipped to 0 and 1) with a majority-class map: the bin of each
    cell's class holds the whole land fraction; domain = land, a bin, finite."""
    sftlf = _found("sftlf", [[-0.05, 100.0, 50.0], [100.05, np.nan, 30.0]], DIMS, units="%")
    classes = _found("land_cover", [[2, 10, 12], [16, 2, 7]], DIMS)
    finite = np.array([[True, True, True], [True, True, False]])
    out = static_fields({"sftlf": sftlf, "land_cover": classes}, lat=LAT, lon=LON, finite=finite)
    assert out["land_fraction"].values[0, 0] == 0.0 and out["land_fraction"].values[1, 0] == 1.0
    np.testing.assert_allclose(out["land_fraction"].values, [[0, 1, 0.5], [1, 0, 0.3]], rtol=1e-7)
    assert out["veg_bin"].values.tolist() == [[1, 4, 5], [0, 1, 3]]
    want = np.zeros((5, 2, 3))
    want[0, 0, 0], want[3, 0, 1], want[4, 0, 2] = 0.0, 1.0, 0.5
    want[0, 1, 1], want[2, 1, 2] = 0.0, 0.3
    np.testing.assert_allclose(_bins(out), want, rtol=1e-7, atol=0)
    # (0,0) has no land, (1,0) no bin, (1,1) no land, (1,2) not finite
    assert out["domain"].values.tolist() == [[False, True, True], [False, False, False]]


def test_majority_classes_alone():
    """Land from the class codes: a valid code other than water (0, 17) is land (255, the
    fill value, too: land without a bin); NaN is not."""
    classes = _found("land_cover", [[0, 2, 17], [255, np.nan, 14]], DIMS)
    out = static_fields({"land_cover": classes}, lat=LAT, lon=LON, finite=ALL)
    assert out["land_fraction"].values.tolist() == [[0, 1, 0], [1, 0, 1]]
    assert out["veg_bin"].values.tolist() == [[0, 1, 0], [0, 0, 5]]
    assert out["domain"].values.tolist() == [[False, True, False], [False, False, True]]
    assert _bins(out)[4].tolist() == [[0, 0, 0], [0, 0, 1]]


def test_no_land_cover_at_all():
    """Without any land-cover input: land where the predictors are finite, no bins, every
    finite cell in the domain."""
    finite = np.array([[True, False, True], [False, True, True]])
    out = static_fields({}, lat=LAT, lon=LON, finite=finite)
    assert out["land_fraction"].values.tolist() == finite.astype(float).tolist()
    assert out["veg_bin"].values.tolist() == [[0, 0, 0], [0, 0, 0]]
    assert _bins(out).sum() == 0
    assert out["domain"].values.tolist() == finite.tolist()
    assert out["domain"].dtype == bool


def test_land_fraction_map_with_class_fractions():
    """sftlf (fraction 0..1) gives the land; the class shares give the bins: (0,0) land 0.8,
    0.7 bin 2 (code 1): bin 2 and vegetated (0.7 / 0.8); (0,1) land 0.5 of which bin 3 (code 6)
    0.2 and barren 0.3: no bin, outside; (0,2) no land by sftlf although its class shares say
    0.9 bin 2: no bin, outside. Others: no land."""
    sftlf = _found("sftlf", [[0.8, 0.5, 0.0], [0.0, 0.0, 0.0]], DIMS, units="1")
    f = _fractions(
        {(0, 0): {1: 0.7, 0: 0.3}, (0, 1): {6: 0.2, 16: 0.3}, (0, 2): {1: 0.9}}, [0, 1, 6, 16]
    )
    out = static_fields({"sftlf": sftlf, "land_cover_fraction": f}, lat=LAT, lon=LON, finite=ALL)
    np.testing.assert_allclose(out["land_fraction"].values[0], [0.8, 0.5, 0], rtol=1e-7)
    assert out["veg_bin"].values.tolist() == [[2, 0, 0], [0, 0, 0]]
    assert out["domain"].values.tolist() == [[True, False, False], [False, False, False]]


def test_attributes():
    out = static_fields({}, lat=LAT, lon=LON, finite=ALL)
    assert out["cell_area"].attrs == {"units": "m2", "long_name": "cell area (sphere R = 6371 km)"}
    assert out["land_fraction"].attrs == {
        "units": "1",
        "standard_name": "land_area_fraction",
        "long_name": "land fraction",
    }
    v = out["veg_bin"].attrs
    assert v["long_name"] == "majority vegetation bin (0 = not vegetated)"
    assert v["flag_values"].tolist() == [0, 1, 2, 3, 4, 5] and v["flag_values"].dtype == np.int8
    assert v["flag_meanings"] == (
        "none evergreen_broadleaf_forest other_forests shrublands savannas_grasslands "
        "croplands_mosaic"
    )
    assert out["bin_fraction"].attrs == {
        "units": "1",
        "long_name": "share of the cell area in each vegetation bin",
    }
    assert out["domain"].attrs == {
        "long_name": "prediction domain: vegetated land, predictors finite every year"
    }
    for name in ("cell_area", "land_fraction", "veg_bin", "domain", "bin_fraction"):
        assert out[name].dims[-2:] == DIMS
        assert out[name]["lon"].values.tolist() == LON.tolist()
        assert out[name]["lat"].values.tolist() == LAT.tolist()


def test_class_fractions_need_one_class_axis():
    f = _found("land_cover_fraction", np.zeros((2, 2, 2, 3)), ("a", "b", *DIMS), units="1")
    with pytest.raises(InputError) as e:
        static_fields({"land_cover_fraction": f}, lat=LAT, lon=LON, finite=ALL)
    err = e.value
    assert str(err).startswith("land_cover_fraction.nc: field 'v_land_cover_fraction': class "
                               "fractions need exactly one class dimension (got ")  # fmt: skip
    assert (err.file, err.field, err.value, err.expected) == (
        "land_cover_fraction.nc",
        "v_land_cover_fraction",
        ["a", "b", "lat", "lon"],
        "(class, lat, lon)",
    )


def test_land_from_class_fractions_is_clipped_to_0_1():
    """Class shares within the rounding _check_fractions allows (-1e-6 .. 1 + 1e-3 each) can
    sum above 1 or below 0: (0,0) 0.6 bin 1 + 0.6 bin 4 -> land 1 (not 1.2); (0,1) a share of
    -5e-7 of barren land and nothing else -> land 0, outside."""
    f = _fractions({(0, 0): {2: 0.6, 10: 0.6}, (0, 1): {16: -5e-7}}, [2, 10, 16])
    out = static_fields({"land_cover_fraction": f}, lat=LAT, lon=LON, finite=ALL)
    assert out["land_fraction"].values[0].tolist() == [1.0, 0.0, 0.0]
    assert out["domain"].values[0].tolist() == [True, False, False]


def test_bad_land_cover_values_name_the_file():
    """A class share of 1.5 and an unknown class code (99) are refused with the file and
    variable named."""
    f = _fractions({(0, 0): {2: 1.5}}, [2, 16])
    with pytest.raises(InputError) as e:
        static_fields({"land_cover_fraction": f}, lat=LAT, lon=LON, finite=ALL)
    assert (e.value.file, e.value.field, e.value.value) == (
        "land_cover_fraction.nc",
        "v_land_cover_fraction",
        1.5,
    )
    classes = _found("land_cover", [[2, 99, 12], [16, 2, 7]], DIMS)
    with pytest.raises(InputError) as e:
        static_fields({"land_cover": classes}, lat=LAT, lon=LON, finite=ALL)
    assert (e.value.file, e.value.field, e.value.value) == ("land_cover.nc", "v_land_cover", 99.0)


def test_vegetated_share_at_the_rounding_allowance():
    """The vegetated share may fall short of 50 % by 1e-9 (rounding): with land 1 (sftlf) and a
    bin share of exactly 0.5 - 1e-9 the cell is vegetated and takes that bin."""
    sftlf = _found("sftlf", np.ones((2, 3)), DIMS, units="1")
    share = 0.5 - 1e-9
    f = _fractions({(i, j): {10: share, 16: 1 - share} for i in range(2) for j in range(3)},
                   [10, 16])  # fmt: skip
    out = static_fields({"sftlf": sftlf, "land_cover_fraction": f}, lat=LAT, lon=LON, finite=ALL)
    assert out["domain"].values.all()
    assert (out["veg_bin"].values == 4).all()
