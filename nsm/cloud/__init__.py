"""NSM on Modal: the local job function (:func:`nsm.job.run_job`) in GPU containers, nothing more.

    app.py       the Modal app: image, checkpoint volume, the ``TrainingJob`` class, the entry points
    jobs.py      each cloud job's run configuration: its run directory on the volume, loader workers, sweeps
    outcomes.py  what happened to each job: its results, or its failure's cause and the remedy
    plan.py      GPU type, timeout, attempts, GPU-hours and cost of a run, before it is launched
    runs.py      detached runs on the deployed app: launch, the run record, status, attach, cancel
    volume.py    copying a run's directory down from the checkpoint volume
    cli.py       ``nsm cloud ...``

Only app.py, outcomes.py, runs.py and volume.py import ``modal`` (the ``cloud`` extra: ``pip install -e .[cloud]``);
the plan and the CLI work without it.
"""
