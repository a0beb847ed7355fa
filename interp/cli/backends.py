"""The options every batch job shares: ``--backend local|ray``, ``--address``, ``--device``; and
``--device`` alone for a command that loads a model in this process.

    interp clamp-report --model smollm2-135m --backend ray                  # a local Ray instance
    interp sweep --model smollm2-135m --layer 15 --backend ray --address ray://head:10001
    interp complexity --features neurons:layers=2,8 --device cuda
    interp circuit graph --prompt "The capital of France is" --device cuda

(Not a command module: it has no ``register``.)
"""

from __future__ import annotations

import argparse


def add_job_arguments(parser: argparse.ArgumentParser, *, unit: str = "unit") -> None:
    """Add --backend, --address (alias --ray-address) and --device to a job's parser."""
    from interp.jobs.units import BACKENDS

    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help=f"where the job's units (one {unit} each) run: this process, or Ray tasks")
    parser.add_argument("--address", "--ray-address", dest="address", default=None, metavar="HOST:PORT",
                        help="an existing Ray cluster (default: start a local instance); the store must be on "
                             "a filesystem every node sees")
    add_device_argument(parser, "the models")


def add_device_argument(parser: argparse.ArgumentParser, what: str = "the model") -> None:
    """Add --device auto|cpu|cuda (default auto) to a command that loads a model."""
    from interp.jobs.units import DEVICES

    parser.add_argument("--device", default="auto", metavar="|".join(DEVICES),
                        help=f"torch device of {what} (auto: a GPU when one is visible)")


def device_option(args: argparse.Namespace) -> str:
    """The torch device of --device, resolved (``auto`` -> cuda or cpu); ``cuda`` where none is
    visible is one clear line. Call it before anything loads."""
    from interp.jobs.units import resolve_device

    return resolve_device(args.device)


def job_options(args: argparse.Namespace) -> dict:
    """backend, address and device from parsed arguments, checked (one clear line if wrong)."""
    from interp.jobs.units import check_backend, resolve_device

    check_backend(args.backend, args.address)
    resolve_device(args.device)
    return {"backend": args.backend, "address": args.address, "device": args.device}
