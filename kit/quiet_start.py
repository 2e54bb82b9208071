"""TensorFlow's C++ start-up messages kept out of the output (oneDNN, CUDA stub, CPU features, absl's preamble).

Why an import hook: TensorFlow 2.21 logs these through absl from static initialisers, before it reads
``TF_CPP_MIN_LOG_LEVEL`` (setting the variable alone still prints three of them), and keras is imported from many
modules, so the one dependable place is the import of ``tensorflow`` itself: its stderr (file descriptor 2) is
captured and written back without the records below the level. A user who sets ``TF_CPP_MIN_LOG_LEVEL`` gets
TensorFlow's own behaviour.

Example:
    >>> from kit.quiet_start import quiet_tensorflow_start
    >>> quiet_tensorflow_start()  # before the first `import keras`
"""

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

__all__ = ["quiet_tensorflow_start"]

# absl's record prefix: severity letter, MMDD, time, thread id, file:line]
_RECORD = re.compile(r"^([IWEF])\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_LEVELS = "IWEF"


def _drop_records(text: str, min_level: int) -> str:
    """``text`` without the absl records below ``min_level`` (0 I, 1 W, 2 E, 3 F) and their continuation lines.

    Example:
        >>> _drop_records("I0000 00:00:1.5 7 port.cc:153] oneDNN on\\nok\\n", 1)
        'ok\\n'
    """
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        record = _RECORD.match(line)
        if record:
            dropping = _LEVELS.index(record.group(1)) < min_level
        elif line.startswith(_ABSL_PREAMBLE):
            dropping = True
        elif dropping and line.startswith("To enable the following instructions"):
            pass  # cpu_feature_guard's second line
        else:
            dropping = False
        if not dropping:
            kept.append(line)
    return "".join(kept)


class _QuietTensorFlow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``tensorflow`` with the process's stderr (file descriptor 2) captured, then writes back all but
    the absl records below ``TF_CPP_MIN_LOG_LEVEL``.

    TensorFlow 2.21 logs its start-up messages through absl from static initialisers, before it reads
    ``TF_CPP_MIN_LOG_LEVEL``, so the variable alone silences only some of them; its messages after start-up
    do honour it.
    """

    def __init__(self, min_level: int):
        self.min_level, self.loader = min_level, None

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the real finder locates the package, this loader wraps its import
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        self.loader, spec.loader = spec.loader, self
        return spec

    def __getattr__(self, name):  # get_code, get_resource_reader, ...: the real loader's
        if name == "loader":
            raise AttributeError(name)
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                self.loader.exec_module(module)
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                captured.seek(0)
                text = _drop_records(captured.read().decode(errors="replace"), self.min_level)
                if text:
                    sys.stderr.write(text)
                    sys.stderr.flush()


def quiet_tensorflow_start() -> None:
    """Hide TensorFlow's INFO and WARNING start-up records (errors still show), unless the user set
    ``TF_CPP_MIN_LOG_LEVEL``; must run before TensorFlow is imported, so ``import kit`` calls it."""
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ and "tensorflow" not in sys.modules:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        sys.meta_path.insert(0, _QuietTensorFlow(2))
