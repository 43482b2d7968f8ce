"""Inputs: SRDB observations, monthly drivers, predictors, vegetation, sites, demo, downloads."""
