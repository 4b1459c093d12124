"""Settings read at start: business dates in the company's zone (CRM_TIMEZONE), the generated signing key."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from crmkit import timeutil
from crmkit.settings import Settings


@pytest.fixture
def zone():
    yield timeutil.use_zone
    timeutil.use_zone(timeutil.DEFAULT_ZONE)


def test_a_moment_late_in_the_utc_evening_is_the_next_day_in_shanghai(zone):
    confirmed = datetime(2026, 11, 27, 23, 37, tzinfo=timezone.utc)  # 07:37 on the 28th in Beijing
    assert timeutil.business_date(confirmed) == date(2026, 11, 28)
    assert timeutil.business_date(datetime(2026, 12, 31, 16, 0, tzinfo=timezone.utc)).year == 2027
    zone("UTC")
    assert timeutil.business_date(confirmed) == date(2026, 11, 27)
    assert timeutil.business_date(datetime(2026, 11, 27, 23, 37)) == date(2026, 11, 27)  # naive = stored UTC


def test_the_zone_is_a_setting_checked_when_read(tmp_path):
    env = {"CRM_VAR_DIR": str(tmp_path), "CRM_SECRET_KEY": "k"}
    assert Settings.from_env("contracts", env).timezone == "Asia/Shanghai"
    assert Settings.from_env("contracts", {**env, "CRM_TIMEZONE": "Europe/Berlin"}).timezone == "Europe/Berlin"
    with pytest.raises(ValueError, match="CRM_TIMEZONE='Asia/Beijing' is not a time zone name"):
        Settings.from_env("contracts", {**env, "CRM_TIMEZONE": "Asia/Beijing"})


def test_the_generated_signing_key_is_readable_by_its_owner_alone(tmp_path):
    Settings.from_env("contracts", {"CRM_VAR_DIR": str(tmp_path)})
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
