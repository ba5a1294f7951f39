"""``mnist-serve`` / ``python -m service``: run the service under gunicorn.

The process execs gunicorn, so in a container gunicorn's master is PID 1 and
receives SIGTERM directly (graceful shutdown), with no shell in between.
``--dev`` runs Flask's single-threaded debug server instead, for development only.
"""
import argparse
import os
import sys
from pathlib import Path

from service.config import Config


def main(argv=None):
    cfg = Config.from_env()
    p = argparse.ArgumentParser(prog="mnist-serve", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                description="Serve the newest valid version of MODELS_DIR/MODEL_NAME/<N>/ over "
                                            "HTTP with gunicorn. Every other setting comes from the environment "
                                            "(see .env.example).")
    p.add_argument("--models-dir", default=str(cfg.models_dir), help="model store root (env MODELS_DIR)")
    p.add_argument("--host", default=cfg.host, help="address to bind (env HOST)")
    p.add_argument("--port", type=int, default=cfg.port, help="port to bind (env PORT)")
    p.add_argument("--workers", type=int, default=cfg.workers, help="worker processes (env WORKERS)")
    p.add_argument("--dev", action="store_true", help="Flask's debug server instead of gunicorn (development only)")
    args = p.parse_args(argv)
    os.environ.update(MODELS_DIR=args.models_dir, HOST=args.host, PORT=str(args.port), WORKERS=str(args.workers))
    if args.dev:
        from service import create_app

        create_app().run(host=args.host, port=args.port, debug=True, use_reloader=False)
        return 0
    conf = Path(__file__).with_name("gunicorn.conf.py")
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "--config", str(conf), "service:create_app()"])


if __name__ == "__main__":
    sys.exit(main())
