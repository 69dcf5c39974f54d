"""Scheduled experiments: one timer heap and one loop for all of them (scheduler.py), and the
planning pass each due experiment gets (ticks.py)."""
