import os
import subprocess
import sys

from kit.quiet_start import _drop_records


def _stderr_of_import(env_level: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if env_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = env_level
    code = "import kit, keras; print(int(keras.ops.add(1, 1)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "2"
    return out.stderr


def test_importing_kit_then_keras_prints_no_tensorflow_start_up_records():
    stderr = _stderr_of_import(None)
    assert "absl::InitializeLog" not in stderr and "oneDNN" not in stderr and "I0000" not in stderr, stderr


def test_a_user_level_is_respected():
    # the user asked for everything: TensorFlow's own start-up records reach stderr (on a CPU machine it always
    # logs at least the CUDA stub or oneDNN note)
    stderr = _stderr_of_import("0")
    assert "I0000" in stderr or "absl::InitializeLog" in stderr, stderr


def test_records_below_the_level_and_their_continuations_are_dropped_the_rest_kept():
    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1.5 7 port.cc:153] oneDNN custom operations are on.\n"
        "I0000 00:00:1.6 7 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n"
        "To enable the following instructions: AVX2, rebuild TensorFlow.\n"
        "E0000 00:00:1.7 7 cuda_platform.cc:52] failed call to cuInit\n"
        "a user's own message\n"
    )
    assert _drop_records(text, 2) == (
        "E0000 00:00:1.7 7 cuda_platform.cc:52] failed call to cuInit\na user's own message\n"
    )
