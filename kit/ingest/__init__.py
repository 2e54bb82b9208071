"""Ingest: raw Kaggle files -> one HDF5 store.

File codecs, the decode pool, listing and quarantine, the store writer.
"""
