"""gunicorn's own log lines (start, worker boot/exit) as JSON, like the app's."""
import logging

from gunicorn.glogging import Logger

from service.logs import JsonFormatter


class JsonLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())
        self.error_log.propagate = False
        logging.getLogger("gunicorn.error").propagate = False
