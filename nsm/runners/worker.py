"""Entry point of one local worker process: read a run config (JSON) on stdin, run the job.

``run_job`` writes ``results.json`` (success) or ``failed-attempt.json`` itself; the exit code
tells the parent which. Log records, Python warnings and progress events go to stdout
as the JSON lines of :mod:`nsm.runners.messages`.
"""

import json
import logging
import sys

from nsm.errors import NSMError
from nsm.job import run_job
from nsm.runners.messages import log_line, progress_line


def send(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class MessageHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        send(log_line(self.format(record), record.levelno))


def main() -> int:
    config = json.load(sys.stdin)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[MessageHandler()])
    logging.captureWarnings(True)
    try:
        run_job(config, progress=lambda event: send(progress_line(event)))
    except NSMError as exc:
        logging.error("error: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
