import datetime as dt

import pytest

from backend.io.dates import date_from_name, parse_date, product_from_name


@pytest.mark.parametrize(
    ("name", "date", "product"),
    [
        ("MOD11A1.A2013077.h18v04.061.2021228105320.hdf", dt.date(2013, 3, 18), "MOD11A1"),
        ("MYD11A2.A2020001.h18v04.061.2020010000000.hdf", dt.date(2020, 1, 1), "MYD11A2"),
        ("MOD21A1D.A2016366.h18v04.061.x.hdf", dt.date(2016, 12, 31), "MOD21A1D"),
        ("MOD11A1.061_LST_Day_1km_doy2013077_aid0001.tif", dt.date(2013, 3, 18), "MOD11A1"),
        ("LC08_L2SP_199026_20130318_20200912_02_T1_ST_B10.TIF", dt.date(2013, 3, 18), "LC08_L2SP"),
        ("LC09_L2SP_199026_20240412_20240413_02_T1_ST_B10.TIF", dt.date(2024, 4, 12), "LC09_L2SP"),
        ("Landsat_LST_cloudrm_20160205.tif", dt.date(2016, 2, 5), None),
        ("fused_2019-07-01.tif", dt.date(2019, 7, 1), None),
    ],
)
def test_names(name, date, product):
    assert date_from_name(name) == date
    assert product_from_name(name) == product


def test_hdf_subdataset_name():
    sds = 'HDF4_EOS:EOS_GRID:"/d/MOD11A1.A2021227.h11v05.061.2021228105320.hdf":MODIS_Grid_Daily_1km_LST:LST_Day_1km'
    assert product_from_name(sds) == "MOD11A1"


def test_ambiguous_or_missing_dates_are_not_guessed():
    assert date_from_name("lst_20160205_to_20160218.tif") is None
    assert date_from_name("lst.tif") is None
    assert date_from_name("tile_99999999.tif") is None


def test_parse_date_formats():
    assert parse_date("2016-02-18") == dt.date(2016, 2, 18)
    assert parse_date("20160218") == dt.date(2016, 2, 18)
    assert parse_date("2016049") == dt.date(2016, 2, 18)
    assert parse_date("") is None
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_date("18/02/2016")
