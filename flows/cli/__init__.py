"""The command line (`evalcore ...`) and the operations it runs: the Prefect API a run
talks to, `serve`/`stop`, the reaper, crashed-run detection, deployment pull steps,
and the frame extraction begun before the flow."""
