"""Adaptive search over run configurations: a spec of ranges and choices (`spec`), Optuna's TPE sampler with Ray Tune's
ASHA scheduler over resumable ablation trials (`runner`), the table, plot and best configuration (`report`).

    pipeline-vae tune apphub/searches/lr_widths.yaml [--address HOST:PORT] [--track mlflow]
"""
