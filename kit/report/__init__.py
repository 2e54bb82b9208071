"""Report: what a person reads about runs and submissions: tables, plots and the ``kit report`` HTML page.

``run_report.write_report`` assembles the page (``page``) from one module per section: ``data_section``,
``cv_section``, ``operating_point``, ``errors_section``, ``explain_section`` (through ``gradcam``) and
``ensemble_section`` (with ``leaderboard``); ``run_view`` reads a run once for all of them.
"""
