"""The ``vectordb serve`` command: its arguments (`add_serve_parser`) and its run
(`run_serve`), kept here so that the CLI needs only a hook.

``vectordb --path ROOT serve --port 8080`` serves the collections under ``ROOT`` (or, with
``--storage s3 --bucket B --prefix P``, under ``s3://B/P/``); the other global options
(``--provider``, ``--model``, ``--chunk-size``...) set the default model and chunking of new
collections. The service's own settings come from flags, ``VECTORDB_SERVER_*`` variables or
the ``--config`` file's ``server`` table (`vectordb_manager.server.settings`).

Once the socket is bound, one line goes to stdout: ``vectordb serve: listening on
http://HOST:PORT`` (with ``--port 0`` the port the system chose).
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from typing import Any

from vectordb_manager.config import read_config_file
from vectordb_manager.errors import ConfigurationError
from vectordb_manager.server.settings import ServerSettings

_FLAGS = (
    "host",
    "port",
    "refresh_interval",
    "max_body_bytes",
    "max_upload_bytes",
    "upload_dir",
    "keep_alive",
)


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` command to the CLI's subparsers."""
    help_ = (
        "serve the collections under the storage root (--path, or the S3 options) over "
        "HTTP: a REST API with OpenAPI docs at /docs"
    )
    p: argparse.ArgumentParser = subparsers.add_parser("serve", help=help_, description=help_)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, help="port (default 8000; 0: any free port)")
    p.add_argument(
        "--refresh-interval",
        dest="refresh_interval",
        type=float,
        metavar="SECONDS",
        help="re-read a collection from storage at most this often before serving it, to see "
        "other servers' writes (default 1.0; 0: before every request)",
    )
    p.add_argument(
        "--max-body-bytes",
        dest="max_body_bytes",
        type=int,
        metavar="N",
        help="largest request body accepted (default 16 MiB); larger ones get 413",
    )
    p.add_argument(
        "--max-upload-bytes",
        dest="max_upload_bytes",
        type=int,
        metavar="N",
        help="largest upload (all files of one request) accepted (default 256 MiB)",
    )
    p.add_argument(
        "--upload-dir",
        dest="upload_dir",
        metavar="DIR",
        help="where uploads are staged for ingestion (default: a folder in the temp dir)",
    )
    p.add_argument(
        "--keep-alive",
        dest="keep_alive",
        type=int,
        metavar="SECONDS",
        help="close a client's idle connection after this long (default 75; keep it longer "
        "than clients and proxies keep idle connections)",
    )
    p.add_argument(
        "--log-level",
        dest="log_level",
        choices=["critical", "error", "warning", "info", "debug"],
        default="info",
        help="the server's log level (default info)",
    )
    p.add_argument(
        "--no-access-log", dest="access_log", action="store_false", help="no line per request"
    )
    p.set_defaults(func=run_serve)
    return p


def build_settings(args: argparse.Namespace) -> ServerSettings:
    """The settings the arguments, the environment and the config file describe."""
    from vectordb_manager.cli import build_config

    section: Any = {}
    if getattr(args, "config", None):
        section = read_config_file(args.config).get("server", {})
    flags = {name: getattr(args, name, None) for name in _FLAGS}
    return ServerSettings.from_sources(build_config(args), file_section=section, flags=flags)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted (SIGINT or SIGTERM: requests in flight finish first)."""
    settings = build_settings(args)
    try:
        import uvicorn

        from vectordb_manager.server.app import create_app
    except ImportError as exc:
        raise ConfigurationError(
            f"vectordb serve needs the server extra ({exc}): pip install 'vectordb-manager[server]'"
        ) from exc
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        access_log=args.access_log,
        timeout_graceful_shutdown=30,
        timeout_keep_alive=settings.keep_alive,
    )
    limit_blas_threads()
    tune_malloc()
    sock = config.bind_socket()
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"vectordb serve: listening on http://{shown}:{port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def limit_blas_threads() -> bool:
    """Keep BLAS (the products of a search over a flat index, and of the offline model) to
    one thread in this process; ``True`` if threadpoolctl could. A server answers requests
    side by side, each on a core of its own: BLAS's own threads on top would oversubscribe
    the cores, and OpenBLAS's threads wait for one another at every product (measured on 2
    busy cores: one search over 1,854 vectors, p99 9.5 ms with BLAS's threads, 0.23 ms
    without)."""
    import numpy  # noqa: F401  (BLAS loaded first: the limit applies to loaded libraries)

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    threadpool_limits(limits=1, user_api="blas")  # for the life of the process
    return True


MALLOC_ARENAS = 2
MALLOC_MMAP_THRESHOLD = 1 << 20  # bytes: blocks this large come from mmap, returned when freed
MALLOC_TRIM_THRESHOLD = 4 << 20  # bytes free at the heap's top before it is given back
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # glibc's malloc.h


def tune_malloc(arenas: int = MALLOC_ARENAS) -> bool:
    """Keep glibc's malloc from holding on to memory a long-running server freed (``True`` if
    it could: Linux with glibc); as ``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_`` and
    ``MALLOC_TRIM_THRESHOLD_``, set before the threads start.

    * At most ``arenas`` arenas. By default malloc opens one per thread up to 8 per core, and
      a server's request threads each freeing arrays another allocated leave every arena
      fragmented (the GIL serializes most allocations anyway).
    * A fixed mmap threshold (`MALLOC_MMAP_THRESHOLD`). By default it rises to the size of
      every mmapped block freed, up to 32 MB, after which arrays of that size come from the
      heap, and a heap holding a few live blocks between freed ones cannot shrink.

    `make bench`, serve part, 16 clients for 60 s: with the default malloc the resident
    memory grew 1.3-2.4x where the data did not; with the arenas limited, two servers over S3
    still grew 1.34-1.79x (end 471-479 MB); with the threshold fixed as well, 1.08x (333 MB).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        return all(
            libc.mallopt(option, value)
            for option, value in (
                (_M_ARENA_MAX, arenas),
                (_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD),
                (_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD),
            )
        )
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


__all__ = [
    "add_serve_parser",
    "build_settings",
    "limit_blas_threads",
    "run_serve",
    "tune_malloc",
]
