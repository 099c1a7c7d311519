"""Tests of what we ship for deployment: the Helm chart, alert rules, dashboard and image."""
