"""kit: a batch toolkit for Kaggle image-classification competitions.

Example:
    >>> import kit
    >>> kit.__version__
    '0.1.0'
"""
__version__ = "0.1.0"
__all__ = ["__version__"]
