"""The ablation's progress lines (`pipeline_vae.ablation.progress`): what a finished trial's line says."""
import io

from pipeline_vae.ablation.progress import Progress
from pipeline_vae.ablation.trial import Trial

RECORD = {"elbo_analytic": -78.134, "kl": 35.61, "active_units": 49}


def test_a_finished_trial_line_gives_its_numbers_and_leaves_out_a_bound_that_was_not_computed():
    stream = io.StringIO()
    progress = Progress(total=2, done=0, stream=stream, epochs=10)
    progress.finished(Trial("preset", 1, "preset@x"), {**RECORD, "iw_bound": -71.494}, seconds=65)
    progress.finished(Trial("preset", 2, "preset@x"), RECORD, seconds=61)  # eval with iw_samples 0: no bound
    first, second = stream.getvalue().splitlines()
    assert first.startswith("[1/2] preset seed 1 done in 01:05: IW bound -71.49, ELBO -78.13, KL 35.61, active units 49")
    assert second.startswith("[2/2] preset seed 2 done in 01:01: ELBO -78.13, KL 35.61, active units 49;"), second
    assert "nan" not in second
