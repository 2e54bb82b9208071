"""Report: what a person reads about runs and submissions: tables and plots."""
