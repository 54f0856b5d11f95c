"""Entry point of one local worker process: read a run config (JSON) on stdin, run the job.

``run_job`` writes ``results.json`` itself, on success and on failure; the exit code tells the
parent whether the job succeeded.
"""

import json
import logging
import sys

import torch

from nsm.errors import NSMError
from nsm.job import run_job


def main() -> int:
    config = json.load(sys.stdin)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    torch.set_num_threads(config["num_threads"])
    try:
        run_job(config)
    except NSMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
