"""Adapters: what one competition's data looks like (layout, columns, image shape, metric) and the registry that finds them."""
