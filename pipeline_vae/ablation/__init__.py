"""Ablations by swapping ops: a spec file (`spec`), one trial's life (`trial`), the runner (`runner`) with its two
executors (`local_executor`, `ray_executor`) and progress lines (`progress`), tables and plots (`report`).

    pipeline-vae ablate apphub/ablations/binarization.yaml [--executor ray] [--track mlflow]
"""


class RunFailed(RuntimeError):
    """A variant's training or evaluation process failed; the message names the run, its log and the last error."""
