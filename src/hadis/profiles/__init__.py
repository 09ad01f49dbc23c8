"""Model pools: variants, configuration tables, Pareto filtering, profile files."""

from hadis.profiles.io import bundled_profiles, load_profile, load_profile_file, save_profile
from hadis.profiles.model import (
    BATCH_SIZES,
    BatchRule,
    ConfigRow,
    Direction,
    Metric,
    ModelVariant,
    Profile,
    ServingDefaults,
)
from hadis.profiles.pareto import pareto_front, pareto_table

__all__ = [
    "BATCH_SIZES",
    "BatchRule",
    "ConfigRow",
    "Direction",
    "Metric",
    "ModelVariant",
    "Profile",
    "ServingDefaults",
    "bundled_profiles",
    "load_profile",
    "load_profile_file",
    "pareto_front",
    "pareto_table",
    "save_profile",
]
