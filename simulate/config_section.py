"""The ``[simulate]`` config section's keys and defaults, read off the settings dataclasses.

A default is written once: on :class:`~simulate.settings.SimulationSettings` (physics) or
:class:`~simulate.farm.FarmOptions` (farm limits). The application registers this section with
``infra.config.register_section("simulate", *config_section_defaults())`` before it loads the
configuration (infra, the runtime layer, does not import the stages).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from simulate.farm import FarmOptions
from simulate.settings import EMSOFT_ELECTRONS, SimulationSettings

#: Settings fields that are ``[simulate]`` keys with a default, in the section's order.
_PHYSICS_KEYS = (
    "engine",
    "device",
    "voltage_kv",
    "energy_min_kev",
    "energy_max_kev",
    "energy_step_kev",
    "sample_tilt_deg",
    "npx",
    "dmin_nm",
)
_DEPTH_KEYS = ("depth_max_nm", "depth_step_nm")
_BETHE_FIELDS = ("bethe_strong", "bethe_weak", "bethe_cutoff", "bethe_sg_double_nm_inv")
#: Farm options that are ``[simulate]`` keys.
_FARM_KEYS = ("time_limit_s", "max_retries")


def config_section_defaults() -> tuple[dict[str, Any], dict[str, type]]:
    """``(defaults, optional)`` of the ``[simulate]`` section.

    ``defaults`` maps each key to its default (its type is the key's type); ``optional`` maps
    the settings fields without a config default (``mc_electrons``, ``mc_seed``, ``mc_file``,
    ``precision``) to the type of their values. ``bethe`` is the list strong, weak, cutoff;
    ``num_electrons`` is EMsoft's electron count (emsoft engine only).
    """
    settings = SimulationSettings()
    farm = FarmOptions()
    defaults: dict[str, Any] = {key: getattr(settings, key) for key in _PHYSICS_KEYS}
    defaults["bethe"] = [settings.bethe_strong, settings.bethe_weak, settings.bethe_cutoff]
    defaults.update({key: getattr(settings, key) for key in _DEPTH_KEYS})
    defaults["num_electrons"] = EMSOFT_ELECTRONS
    defaults.update({key: getattr(farm, key) for key in _FARM_KEYS})
    taken = {*_PHYSICS_KEYS, *_DEPTH_KEYS, *_BETHE_FIELDS}
    optional = {
        f.name: type(f.default) if f.default is not None else str
        for f in dataclasses.fields(SimulationSettings)
        if f.name not in taken
    }
    return defaults, optional
