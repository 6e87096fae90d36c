"""Ablations by swapping ops: a spec file (`spec`), a runner on FE's GridSearch (`runner`), tables and plots (`report`).

    pipeline-vae ablate apphub/ablations/binarization.yaml
"""


class RunFailed(RuntimeError):
    """A variant's training or evaluation process failed; the message names the run, its log and the last error."""
