"""Where a benchmark ran: the device's name and the library versions, for the report."""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from importlib import metadata

import torch

LIBRARIES = ("torch", "torchvision", "timm", "einops")


@dataclass(frozen=True)
class DeviceInfo:
    type: str  # "cuda" or "cpu"
    name: str  # e.g. "NVIDIA H100 80GB HBM3"
    slug: str  # the name for file names, e.g. "nvidia-h100-80gb-hbm3"; "cpu" for any CPU
    memory_bytes: int | None  # the GPU's total memory; None for a CPU


def describe_device(device: torch.device) -> DeviceInfo:
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        slug = re.sub(r"[^a-z0-9]+", "-", properties.name.lower()).strip("-")
        return DeviceInfo("cuda", properties.name, slug, properties.total_memory)
    return DeviceInfo(device.type, _cpu_name(), device.type, None)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # not Linux
        pass
    return platform.processor() or "CPU"


def library_versions() -> dict[str, str | None]:
    """Python, the libraries that are timed, and the CUDA toolkit torch was built with."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for library in LIBRARIES:
        try:
            versions[library] = metadata.version(library)
        except metadata.PackageNotFoundError:
            versions[library] = None
    versions["cuda"] = torch.version.cuda  # the toolkit torch was built with
    return versions
