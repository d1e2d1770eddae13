"""The sink's settings (sink/settings.py) taken from a real configuration: zones, templates (the
defaults where none is configured), PTRs, the region ("" means none)."""

from minidns.server.config import Config
from minidns.sink.naming import DEFAULT_TEMPLATES
from minidns.sink.settings import EventSettings


def test_the_settings_are_the_configurations():
    config = Config(events_zone="%(project_id)s.cloud.test.", events_zone_suffix="projects.test.",
                    events_templates={"nova": "%(display_name)s.%(zone)s"}, events_ptr=False,
                    events_create_ptr_zones=True, cloudstack_common_zone="cs.test.", events_region="RegionTwo")  # fmt: skip
    s = EventSettings.from_config(config)
    assert s == EventSettings("%(project_id)s.cloud.test.", "projects.test.", {"nova": "%(display_name)s.%(zone)s"},
                              False, True, "cs.test.", "RegionTwo")  # fmt: skip
    assert s.template("nova") == "%(display_name)s.%(zone)s"
    assert s.template("neutron") == DEFAULT_TEMPLATES["neutron"] == "%(hostname)s.fip.%(zone)s"


def test_the_defaults():
    s = EventSettings.from_config(Config())
    assert (s.zone, s.zone_suffix, s.ptr, s.create_ptr_zones, s.region) == (None, None, True, False, "RegionOne")
    assert {h: s.template(h) for h in DEFAULT_TEMPLATES} == DEFAULT_TEMPLATES
    assert EventSettings.from_config(Config(events_region="")).region is None
