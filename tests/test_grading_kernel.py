"""labkit.grading.kernel.KernelSession, a real kernel under bubblewrap: each outcome of a cell (ok, error,
timeout with the state kept, hung, dead), the output caps, a kernel that cannot start, and the
clipping of long text by hand. Skipped where bubblewrap does not work."""

from __future__ import annotations

import time

import pytest
from nbformat.v4 import new_output

from labkit.grading import kernel as kn
from labkit.grading.grader import kernel_env
from labkit.grading.kernel import KernelSession, KernelStartError
from labkit.grading.sandbox import Sandbox, level_works


def test_caps():
    assert (kn.MAX_OUTPUTS, kn.MAX_TEXT, kn.KERNEL_NAME) == (200, 20_000, "labkit-grading")


def test_clip_cuts_long_stream_text_only():
    long = new_output("stream", name="stdout", text="x" * 20_001)
    assert kn._clip(long).text == "x" * 20_000 + "\n[... output truncated by the grader]\n"
    exact = new_output("stream", name="stdout", text="y" * 20_000)
    assert kn._clip(exact).text == "y" * 20_000
    other = new_output("execute_result", data={"text/plain": "z" * 30_000})
    assert kn._clip(other).data["text/plain"] == "z" * 30_000


def _session(tmp_path, name: str, **kw) -> KernelSession:
    if not level_works("bwrap"):
        pytest.skip("bubblewrap does not work here")
    runtime = tmp_path / f"lkg-{name}"
    work = runtime / "work"
    work.mkdir(parents=True)
    return KernelSession(Sandbox("bwrap", memory_mb=3000), runtime_dir=runtime, workdir=work,
                         env=kernel_env(runtime, work, 0, {}), **kw)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    with _session(tmp_path_factory.mktemp("kernel"), "a") as session:
        yield session


def _text(result) -> str:
    return "".join(o.get("text", "") for o in result.outputs if o.output_type == "stream")


def test_ok_and_error_cells(kernel):
    ok = kernel.execute("x = 21\nprint(x * 2)", timeout=30)
    assert ok.status == "ok" and _text(ok) == "42\n" and ok.seconds > 0
    err = kernel.execute("print('before')\nraise KeyError('k')", timeout=30)
    assert err.status == "error" and [o.output_type for o in err.outputs] == ["stream", "error"]
    assert err.outputs[1].ename == "KeyError"
    value = kernel.execute("x + 1", timeout=30)
    assert [o.output_type for o in value.outputs] == ["execute_result"] and value.outputs[0].data["text/plain"] == "22"


def test_a_timeout_interrupts_and_keeps_the_state(kernel):
    start = time.monotonic()
    slow = kernel.execute("x, y = 21, 5\nimport time\nwhile True:\n    time.sleep(0.05)", timeout=1.0, grace=10)
    assert slow.status == "timeout" and 1.0 <= slow.seconds < 8 and time.monotonic() - start < 10
    assert any(o.output_type == "error" and o.ename == "KeyboardInterrupt" for o in slow.outputs)
    after = kernel.execute("print(x, y)", timeout=30)
    assert after.status == "ok" and _text(after) == "21 5\n"


def test_outputs_are_capped_but_the_error_is_kept(kernel):
    result = kernel.execute("from IPython.display import display\nfor i in range(230):\n    display(i)\n"
                            "raise ValueError('last')", timeout=60)
    assert result.status == "error" and len(result.outputs) == 201
    assert result.outputs[199].data["text/plain"] == "199" and result.outputs[200].ename == "ValueError"
    long = kernel.execute("print('a' * 25000)", timeout=30)
    assert _text(long) == "a" * 20_000 + "\n[... output truncated by the grader]\n"


def test_a_kernel_that_ignores_the_interrupt_is_hung(tmp_path):
    code = "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass"
    with _session(tmp_path, "hung") as session:
        start = time.monotonic()
        result = session.execute(code, timeout=1.0, grace=1.5)
        assert result.status == "hung" and 2.5 <= result.seconds < 6 and time.monotonic() - start < 8


def test_a_kernel_that_exits_is_dead(tmp_path):
    with _session(tmp_path, "dead") as session:
        result = session.execute("import os\nos._exit(3)", timeout=30)
        assert result.status == "dead" and result.seconds < 20
        assert not session.km.is_alive()
    assert session.kc is None


def test_a_kernel_that_cannot_start(tmp_path, monkeypatch):
    session = _session(tmp_path, "none", startup_timeout=3)
    spec = session.runtime_dir / "kernelspec" / kn.KERNEL_NAME / "kernel.json"
    assert spec.is_file() and '"interrupt_mode": "message"' in spec.read_text()
    spec.write_text(spec.read_text().replace('"-m", "ipykernel_launcher"', '"-c", "import time; time.sleep(30)"'))
    start = time.monotonic()
    with pytest.raises(KernelStartError, match="^the grading kernel did not start: RuntimeError: Kernel didn't respond"):
        session.__enter__()
    assert time.monotonic() - start < 15 and session.kc is None and not session.km.has_kernel


def test_closing_does_not_wait_for_the_students_exit_handlers(tmp_path):
    """The kernel is killed, not asked to shut down: an exit handler of 30 s costs nothing (a polite
    shutdown waits for it a few seconds before it kills)."""
    session = _session(tmp_path, "atexit")
    with session:
        assert session.execute("import atexit, time\natexit.register(time.sleep, 30)", timeout=30).status == "ok"
        start = time.monotonic()
    assert time.monotonic() - start < 1.5 and not session.km.has_kernel


def test_a_short_grace_still_reads_the_reply(kernel):
    assert kernel.execute("z = 1", timeout=30, grace=0.5).status == "ok"
    assert kernel.execute("raise ValueError", timeout=30, grace=0.5).status == "error"


def test_a_second_kernel_in_the_same_run_folder(tmp_path):
    """The runner starts a fresh kernel in the same run folder after a crash."""
    first = _session(tmp_path, "again")
    second = KernelSession(Sandbox("bwrap"), runtime_dir=first.runtime_dir, workdir=first.workdir, env=first.env)
    assert second.kc is None and (first.runtime_dir / "kernelspec" / kn.KERNEL_NAME / "kernel.json").is_file()


def test_a_kernel_command_that_does_not_exist(tmp_path):
    session = _session(tmp_path, "missing", startup_timeout=3)
    spec = session.runtime_dir / "kernelspec" / kn.KERNEL_NAME / "kernel.json"
    spec.write_text(spec.read_text().replace(f'"argv": ["{kn.sys.executable}"', '"argv": ["/nonexistent/python"'))
    with pytest.raises(KernelStartError, match="^the grading kernel did not start: FileNotFoundError: "):
        session.__enter__()
    assert session.kc is None
