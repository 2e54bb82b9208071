"""Adapters: what one competition's data looks like (layout, columns, image shape, metric).

``base`` holds the adapter types, ``image_spec`` what a stored image is, ``registry`` finds the adapters
(entry-point group ``kit.adapters`` and the top-level ``competitions`` package) and looks them up by name.
"""
