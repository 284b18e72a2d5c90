"""Regions mapped onto clouds: the placement a profile describes, resolved and checked once.

`resolve(profile)` turns `app.regions`, `app.placement` and `deployment.clouds` into one
`Placement` (per region: its cloud, node capacity, added latency, egress price), or raises
`PlacementError` naming the profile field at fault; the loader turns that into FILE:LINE.
Shared by the engine (sim/cloud.py) and anything else that needs to know which cloud a region
is in. Never imports the UI.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devsim_tui.config.schema import Profile

#: Internet egress list prices, first tier ($/GB): AWS EC2 data transfer out, Azure bandwidth
#: (Microsoft premium network), Google Cloud premium tier, DigitalOcean's overage rate
#: (docs/cloud.md cites the pricing pages). A cloud not listed here costs DEFAULT_EGRESS.
EGRESS_USD_PER_GB = {"aws": 0.09, "azure": 0.087, "gcp": 0.12, "digitalocean": 0.01}
DEFAULT_EGRESS_USD_PER_GB = 0.09
_SEP = re.compile(r"[-_.:/]")


class PlacementError(ValueError):
    """An inconsistent placement; `path` is the profile field to blame (for FILE:LINE)."""

    def __init__(self, path: tuple[Any, ...], message: str):
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Placement:
    regions: tuple[str, ...]
    clouds: tuple[str, ...]  # the cloud of each region ("" for a single unnamed cloud)
    capacity: tuple[int, ...]  # pods each region's nodes hold
    latency_ms: tuple[float, ...]  # added to requests routed to a pod in the region
    egress_usd_per_gb: tuple[float, ...]  # price of a GB leaving each region's cloud
    ingress: str  # the cloud whose load balancer takes the requests
    grace_s: float  # node-monitor-grace-period
    toleration_s: float  # tolerationSeconds of the unreachable:NoExecute toleration

    @property
    def multi_cloud(self) -> bool:
        return len(set(self.clouds)) > 1

    def cross_cloud(self) -> tuple[bool, ...]:
        """Whether requests routed to each region leave the ingress cloud."""
        return tuple(c != self.ingress for c in self.clouds)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def named_after(region: str, cloud: str) -> bool:
    """Whether the region's name says its cloud (`aws`, `aws-eu-west-1` for AWS)."""
    r, k = region.lower(), _key(cloud)
    if _key(region) == k:
        return True
    head = _SEP.split(r, 1)
    return len(head) == 2 and _key(head[0]) == k


def unknown_keys(profile: Profile) -> list[tuple[tuple[Any, ...], str]]:
    """Per-region settings for regions not in app.regions, prices for clouds not declared:
    (field path, problem). `resolve` ignores them (a file that extends a profile and changes
    its regions cannot drop the base's keys: mappings merge); the loader reports those written
    in the same file as the regions or clouds they miss (likely typos)."""
    app = profile.app
    keys = [_key(c) for c in profile.deployment.clouds]
    out = [(("app", "placement", "regions", name),
            f"no region {name!r} in app.regions ({', '.join(app.regions)})")
           for name in app.placement.regions if name not in app.regions]
    out += [(("app", "placement", "egress_usd_per_gb", name),
             f"cloud {name!r} is not in deployment.clouds "
             f"({', '.join(profile.deployment.clouds) or 'empty'})")
            for name in app.placement.egress_usd_per_gb if _key(name) not in keys]
    return out


def resolve(profile: Profile) -> Placement:
    """The profile's placement, checked: every region in exactly one declared cloud, every
    declared cloud holding a region (see `unknown_keys` for the settings that name neither)."""
    app = profile.app
    spec = app.placement
    regions = list(app.regions)
    declared = list(profile.deployment.clouds)
    keys = [_key(c) for c in declared]
    for j, k in enumerate(keys):
        if not k:
            raise PlacementError(("deployment", "clouds", j), "a cloud needs a name")
        if k in keys[:j]:
            raise PlacementError(("deployment", "clouds", j),
                                 f"cloud {declared[j]!r} is listed twice")
    if len(set(regions)) != len(regions):
        dup = next(r for i, r in enumerate(regions) if r in regions[:i])
        raise PlacementError(("app", "regions", regions.index(dup, regions.index(dup) + 1)),
                             f"region {dup!r} is listed twice")

    def canonical(cloud: str, path: tuple[Any, ...]) -> str:
        if not declared:
            raise PlacementError(path, f"cloud {cloud!r} is not in deployment.clouds, which is "
                                 "empty (a single-cloud estate): list the clouds there")
        if _key(cloud) not in keys:
            raise PlacementError(path, f"cloud {cloud!r} is not in deployment.clouds "
                                 f"({', '.join(declared)})")
        return declared[keys.index(_key(cloud))]

    clouds: list[str] = []
    for i, region in enumerate(regions):
        own = spec.regions.get(region)
        if own is not None and own.cloud is not None:
            clouds.append(canonical(own.cloud, ("app", "placement", "regions", region, "cloud")))
            continue
        if not declared:
            clouds.append("")
            continue
        named = [c for c in declared if named_after(region, c)]
        if len(named) == 1:
            clouds.append(named[0])
        elif len(declared) == 1:
            clouds.append(declared[0])
        else:
            raise PlacementError(
                ("app", "regions", i),
                f"region {region!r} maps to no cloud of deployment.clouds "
                f"({', '.join(declared)}): name it after one (e.g. {_key(declared[0])}-{region}) "
                f"or set app.placement.regions.{region}.cloud")
    for j, cloud in enumerate(declared):
        if cloud not in clouds:
            raise PlacementError(("deployment", "clouds", j),
                                 f"cloud {cloud!r} has no region in app.regions "
                                 f"({', '.join(regions)}): no pod can run there")
    if spec.ingress_cloud is not None:
        ingress = canonical(spec.ingress_cloud, ("app", "placement", "ingress_cloud"))
    else:
        ingress = clouds[0]

    n = len(regions)
    if spec.node_capacity_pods is not None:
        default_cap = spec.node_capacity_pods
    else:
        # N+1: the regions left after losing one still hold maxReplicas.
        default_cap = math.ceil(profile.scaling.maxReplicas / max(n - 1, 1))
    prices = {_key(c): v for c, v in spec.egress_usd_per_gb.items()}
    capacity, latency, egress = [], [], []
    for region, cloud in zip(regions, clouds):
        own = spec.regions.get(region)
        cap = own.node_capacity_pods if own is not None else None
        capacity.append(default_cap if cap is None else cap)
        lat = own.latency_ms if own is not None else None
        latency.append(lat if lat is not None else
                       (0.0 if cloud == ingress else spec.cross_cloud_latency_ms))
        egress.append(prices.get(_key(cloud), EGRESS_USD_PER_GB.get(_key(cloud),
                                                                    DEFAULT_EGRESS_USD_PER_GB)))
    return Placement(tuple(regions), tuple(clouds), tuple(capacity), tuple(latency),
                     tuple(egress), ingress, spec.node_monitor_grace_period_seconds,
                     spec.toleration_seconds)
