"""Sweeps: many runs from one command line, on Optuna (``cnnreg sweep``).

A sweep is an Optuna study: :mod:`cnnreg.sweeps.space` reads the search space from run options
that take several values; :mod:`cnnreg.sweeps.study` keeps the study in a storage (a local
SQLite file by default, PostgreSQL or MySQL for workers on several machines), runs its trials as
ordinary runs and summarises it.  This package is a driver above :mod:`cnnreg.training`; Optuna
is imported only when a sweep runs or is shown.
"""
