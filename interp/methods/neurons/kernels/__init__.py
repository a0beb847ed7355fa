"""Small C kernels for reductions no library fuses, built on first use with the system's C compiler.

    from interp.methods.neurons.kernels import vocab_reduce
    kernel = vocab_reduce()          # None where no C compiler works: callers use their torch path

Each kernel is one C file beside this module (its header comment says why it exists). It is
compiled once per machine with ``cc -O3 -march=native`` into the data root's cache
(``<cache>/kernels/<name>-<hash>.so``; the hash covers the source, the flags, the compiler and
the CPU's feature flags, so a cache shared between different machines never loads code built
for another CPU) and loaded with ctypes, whose calls release the GIL: threads run kernels in
parallel. ``INTERP_KERNELS=0`` turns every kernel off (the torch paths run instead).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
import warnings
from pathlib import Path

from interp.paths import cache_dir

HERE = Path(__file__).resolve().parent
ENV_VAR = "INTERP_KERNELS"
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-std=c99", "-shared", "-fPIC")

_P, _I = ctypes.c_void_p, ctypes.c_int64


class KernelUnavailable(RuntimeError):
    """No working C compiler, or kernels turned off with INTERP_KERNELS=0."""


def compiler() -> list[str]:
    """The C compiler command: $CC, else the one Python was built with, else ``cc``."""
    cmd = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cmd)


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def build(name: str, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile ``<name>.c`` (cached; see the module docstring) and return the shared library's path."""
    if os.environ.get(ENV_VAR, "1") == "0":
        raise KernelUnavailable(f"C kernels are turned off ({ENV_VAR}=0)")
    source = HERE / f"{name}.c"
    cc = compiler()
    if shutil.which(cc[0]) is None:
        raise KernelUnavailable(f"no C compiler: {cc[0]!r} is not on PATH (set CC to one)")
    flags = (*FLAGS, *extra_flags)
    try:
        version = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise KernelUnavailable(f"C compiler {cc[0]!r} does not run: {exc}") from None
    digest = hashlib.sha256("\0".join([source.read_text(), " ".join(flags), version, platform.machine(),
                                       _cpu_flags()]).encode()).hexdigest()[:16]
    out_dir = cache_dir() / "kernels"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}-{digest}.so"
    if target.exists():
        return target
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".so", dir=out_dir)
    os.close(fd)
    try:
        done = subprocess.run([*cc, *flags, str(source), "-o", tmp, "-lm"], capture_output=True, text=True,
                              timeout=300)
        if done.returncode:
            raise KernelUnavailable(f"compiling {source.name} failed: {done.stderr.strip()[-2000:]}")
        os.replace(tmp, target)  # atomic: concurrent builders write identical files
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


@functools.lru_cache(maxsize=None)
def vocab_reduce_lib(generic: bool = False):
    """The `vocab_reduce.c` library (raises `KernelUnavailable`); `generic` forces its plain C path."""
    lib = ctypes.CDLL(str(build("vocab_reduce", ("-DINTERP_GENERIC",) if generic else ())))
    lib.reduce_block.argtypes = [_P, _I, _I, _I, _I, ctypes.c_int, _P, _P, _P, _P, _P]
    lib.reduce_block.restype = None
    lib.vocab_reduce_simd.restype = ctypes.c_int
    return lib


@functools.lru_cache(maxsize=None)
def vocab_reduce():
    """The fused top-k / softmax-statistics kernel, or None (with one warning) where it cannot be built."""
    try:
        return vocab_reduce_lib()
    except KernelUnavailable as exc:
        if os.environ.get(ENV_VAR, "1") != "0":
            warnings.warn(f"neuron decoding falls back to torch ops (slower): {exc}", RuntimeWarning, stacklevel=2)
        return None
