"""``python main.py serve``: the demo page on this machine, until Ctrl-C."""

from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape

from zoo.cli.output import console, warn_line

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def command(
    checkpoint: Optional[str] = typer.Option(None, help="Run folder, checkpoint folder or model.safetensors to offer first \\[default: the runs under --runs-dir, newest first]."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 opens the page to the network)."),
    port: int = typer.Option(8000, help="Port to listen on (0: any free port)."),
    runs_dir: str = typer.Option("runs", help="Where the runs to choose from are."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
) -> None:
    """Serve a local page: record or drop speech, see the face (Ctrl-C stops)."""
    import logging

    import uvicorn

    from zoo.cli.progress import ConsoleProgress
    from zoo.serve.app import create_app, listen
    from zoo.serve.faces import FaceService

    service = FaceService(runs_dir, checkpoint, device)
    if not service.choices():
        warn_line(f"no trained model under {runs_dir}/ yet: train one with `python main.py train`; "
                  f"the page lists it once it is written")
    sock = listen(host, port)
    bound = sock.getsockname()
    address = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    console.print(f"serving http://{address}:{bound[1]}/ (Ctrl-C stops)", highlight=False)
    if host not in LOCAL_HOSTS:
        warn_line(f"listening on {host}: anyone who can reach this machine can use the page")
    # python-multipart logs every malformed form as a warning; the request's own line says it
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    config = uvicorn.Config(create_app(service, progress=ConsoleProgress()), log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stops gracefully, then passes Ctrl-C on: the normal way out
        pass
    console.print(f"stopped serving {escape(address)}:{bound[1]}", highlight=False)
