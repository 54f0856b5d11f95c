"""Runners: where jobs run — local processes, or Modal containers (``nsm.cloud``)."""
