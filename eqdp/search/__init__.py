"""Multi-objective architecture search for the Eq-NASNet family (Optuna, journal storage).

``eqdp search run`` fills a study, ``eqdp search show`` reports its Pareto front.
Heavy imports (torch, optuna) happen inside the functions.
"""
