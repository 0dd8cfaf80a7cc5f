"""Alerts: rules over the store, an alerts table with delivery state, notifications.

``run_check(db, config, notify=[...])`` evaluates the rules (lambdascope.alerts.rules),
records alert episodes (lambdascope.alerts.state) and delivers them through apprise
(lambdascope.alerts.deliver); ``run_digest`` does the same for the weekly digest.
"""

from lambdascope.alerts.check import CheckResult, DeliveryResult, run_check, run_digest
from lambdascope.alerts.config import AlertConfig, RulesError, default_config, load_config

__all__ = [
    "AlertConfig",
    "CheckResult",
    "DeliveryResult",
    "RulesError",
    "default_config",
    "load_config",
    "run_check",
    "run_digest",
]
