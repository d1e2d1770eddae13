"""The sink's settings, taken from the configuration: which zones, which name templates, PTRs."""

from __future__ import annotations

from dataclasses import dataclass, field

from .naming import DEFAULT_TEMPLATES


@dataclass(frozen=True)
class EventSettings:
    zone: str | None = None  # the zone of Nova/Neutron records; may use %(project_id)s, %(project)s
    zone_suffix: str | None = None  # <project id>.<suffix> when that zone exists, before `zone`
    templates: dict = field(default_factory=dict)  # handler → name template (DEFAULT_TEMPLATES)
    ptr: bool = True  # PTR records in the reverse zone when it exists
    create_ptr_zones: bool = False  # … and create the reverse zone (/24, /64) when none exists
    cloudstack_common_zone: str | None = None  # CloudStack VMs whose account and domain have no network domain
    region: str | None = None  # Neutron's floating IPs are offered for reverse DNS (/v2/reverse/floatingips) in this region

    @classmethod
    def from_config(cls, config) -> EventSettings:
        return cls(config.events_zone, config.events_zone_suffix, dict(config.events_templates), config.events_ptr,
                   config.events_create_ptr_zones, config.cloudstack_common_zone, config.events_region or None)  # fmt: skip

    def template(self, handler: str) -> str:
        return self.templates.get(handler) or DEFAULT_TEMPLATES[handler]
