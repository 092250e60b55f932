"""Suites: declarative sets of runs, planned, claimed and executed on local or Slurm workers.

``load_suite`` reads and validates a suite file, ``plan_suite`` expands it into
resolved run configurations and splits off the finished ones, ``execute`` runs
the pending ones on an executor (``inline``, ``local`` processes or ``slurm``
jobs through submitit). Workers pull configurations from the plan and claim
each one with a lock file next to the records, so any number of workers and
drivers, on any number of machines sharing the results folder, run every
configuration once.
"""

from eqdp.suites.file import SuiteFile, load_suite
from eqdp.suites.plan import Plan, plan_suite

__all__ = ["Plan", "SuiteFile", "load_suite", "plan_suite"]
