"""The allocator settings every amsnet process runs with (amsnet_lib/_runtime.py)."""
import os
import subprocess
import sys

from amsnet_lib._runtime import ALLOCATOR_ENV, allocator_env


def test_allocator_env_adds_settings_and_keeps_the_users():
    env = allocator_env({"PATH": "/bin", "MALLOC_TOP_PAD_": "123"})
    assert env["PATH"] == "/bin"
    assert env["MALLOC_TOP_PAD_"] == "123"  # set by the user: kept
    assert env["MALLOC_MMAP_THRESHOLD_"] == ALLOCATOR_ENV["MALLOC_MMAP_THRESHOLD_"]


def test_shell_exports_evaluate_to_the_settings():
    env = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_ENV}
    script = f'eval "$({sys.executable} -m amsnet_lib._runtime)"; ' + "; ".join(f'echo "${k}"' for k in ALLOCATOR_ENV)
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == list(ALLOCATOR_ENV.values())


def test_reexec_sets_the_settings(tmp_path):
    (tmp_path / "show_env.py").write_text("import os; print(os.environ.get('MALLOC_MMAP_THRESHOLD_'))\n")
    env = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_ENV and k != "AMSNET_NO_REEXEC"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    code = "from amsnet_lib._runtime import reexec_with_allocator_settings as r; r('show_env', []); print('not re-executed')"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == [ALLOCATOR_ENV["MALLOC_MMAP_THRESHOLD_"]]


def test_amsnet_command_reexecutes_but_library_calls_do_not(monkeypatch):
    from amsnet_lib import _runtime, cli

    calls = []
    monkeypatch.setattr(_runtime, "reexec_with_allocator_settings", lambda module, argv: calls.append((module, argv)))
    monkeypatch.setattr(sys, "argv", ["amsnet", "features", "--help"])
    for argv in (None, ["features", "--help"]):
        try:
            cli.main(argv)
        except SystemExit:  # --help
            pass
    assert calls == [("amsnet_lib.cli", ["features", "--help"])]
