"""Configuration: the fields (:mod:`.model`) and where each may come from (:mod:`.load`)."""

from astraforge.config.load import (
    CONFIG_FILES,
    ENV_FIELDS,
    TRUSTED,
    load,
    load_policy,
    read_file,
    validate,
)
from astraforge.config.model import (
    DEFAULT_PRICES,
    INSTRUCTION_FILES,
    Budgets,
    CIFixConfig,
    Config,
    ContextConfig,
    FollowUpConfig,
    ModelConfig,
    Price,
    PublishConfig,
    SandboxSettings,
    TriggerConfig,
    json_schema,
)

__all__ = [
    "CONFIG_FILES",
    "DEFAULT_PRICES",
    "ENV_FIELDS",
    "INSTRUCTION_FILES",
    "TRUSTED",
    "Budgets",
    "CIFixConfig",
    "Config",
    "ContextConfig",
    "FollowUpConfig",
    "ModelConfig",
    "Price",
    "PublishConfig",
    "SandboxSettings",
    "TriggerConfig",
    "json_schema",
    "load",
    "load_policy",
    "read_file",
    "validate",
]
