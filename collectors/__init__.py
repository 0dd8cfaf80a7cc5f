"""Collectors: pull Lambda inventory, CloudWatch metrics and logs into the lambdascope store."""
