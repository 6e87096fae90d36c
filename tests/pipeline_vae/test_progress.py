import io

from pipeline_vae.progress import Progress


def test_non_terminal_writes_one_line_per_tenth():
    stream = io.StringIO()
    progress = Progress(200, "IW bound K=10", stream=stream)
    for _ in range(200):
        progress.update(1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("IW bound K=10: 20/200 (10%) elapsed ") and " ETA " in lines[0]
    assert lines[-1].startswith("IW bound K=10: 200/200 (100%)") and lines[-1].endswith("ETA 0m00s")


def test_eta_is_proportional_to_the_remaining_work():
    progress = Progress(4, "x", stream=io.StringIO())
    progress.start -= 10.0  # pretend 10 s passed
    progress.done = 1
    assert progress.line().endswith("elapsed 0m10s ETA 0m30s")
