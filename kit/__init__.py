"""kit: a batch toolkit for Kaggle image-classification competitions.

Importing kit keeps TensorFlow's C++ start-up messages out of the output unless ``TF_CPP_MIN_LOG_LEVEL`` is set
(``kit.quiet_start``).

Example:
    >>> import kit
    >>> kit.__version__
    '0.1.0'
"""

from kit.quiet_start import quiet_tensorflow_start

__version__ = "0.1.0"
__all__ = ["__version__"]

quiet_tensorflow_start()
