"""Deployment entry points for engines that run hadis (Ray Serve)."""
