"""Outcomes of 1:1 occurrences, the grace period after a drop, and the one alert email."""
