"""``harmony-eval review RUN``: serve the review page of a scored run until Ctrl-C.

Registered by ``harmony_eval.cli``; importing this module needs only typer, so the command is listed
(and says what to install) even without the ``review`` extra.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Annotated

import typer

from ..cli_support import require_extra


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host.strip("[]"), 0))
        return s.getsockname()[1]


def build(run: Path, labels: Path | None = None, *, host: str = "127.0.0.1"):
    """(Review, ASGI app) for ``run``; raises ``ImportError`` without the review extra."""
    from .app import Review, create_app
    from .run import load_run

    rv = Review(
        load_run(run), Path(labels) if labels else Path(run) / "labels.csv", loopback_only=is_loopback(host)
    )
    return rv, create_app(rv)


def review(
    run: Annotated[Path, typer.Argument(help="A scored run folder (holds results.jsonl).")],
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Labels CSV to write (default RUN/labels.csv).")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but loopback exposes the run.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free one).")] = 8765,
) -> int:
    """Label the images the evaluator is least sure of in a local web page; labels go to
    RUN/labels.csv, ready for `harmony-eval calibrate --labels`."""
    require_extra("review", "`harmony-eval review`", ("starlette", "uvicorn"))  # main(): one line, exit 2
    import uvicorn

    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port}: expected 0..65535")
    if not is_loopback(host):
        typer.echo(f"warning: --host {host} is not a loopback address: anyone who can reach this machine on "
                   f"port {port} can see the run's images (changing labels still needs the page's token)",
                   err=True)  # fmt: skip
    rv, app = build(run, labels, host=host)
    if port == 0:
        port = free_port(host)
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host.strip("[]"), port))
    except OSError as e:
        raise ValueError(
            f"--port {port} on {host}: cannot listen there ({e.strerror}); pick another --port"
        ) from None
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    n = rv.progress(rv.store.all())
    typer.echo(f"Review page: http://{shown}:{port}/  ({n['labelled']} / {n['total']} labelled; labels -> "
               f"{rv.labels_path}; Ctrl-C to stop)")  # fmt: skip
    uvicorn.Server(
        uvicorn.Config(app, host=host.strip("[]"), port=port, log_level="warning", lifespan="off")
    ).run()
    return 0
