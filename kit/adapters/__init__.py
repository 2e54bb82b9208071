"""Adapters: what one competition's data looks like (layout, columns, image shape, metric).

``base`` holds the adapter types, ``image_spec`` what a stored image is, ``declarative`` reads an adapter from a
TOML file, ``registry`` finds the adapters (entry-point group ``kit.adapters``, the top-level ``competitions``
package and its ``*.toml`` files, the TOML files named in ``KIT_ADAPTERS``) and looks them up by name.
"""
