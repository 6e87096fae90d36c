"""The training log is read as data: a damaged one is refused in one line naming it and the way out."""
import pytest

from pipeline_vae.train_log import read_log

HEADER = "mode,step,epoch,loss,elbo\n"


def test_rows_are_read_by_mode(tmp_path):
    log = tmp_path / "train_log.csv"
    log.write_text(HEADER + "train,1,1,200.5,\ntrain,2,1,150.25,\neval,2,1,,-160.75\n")
    assert read_log(str(log)) == {"loss": [(1, 1, 200.5), (2, 1, 150.25)], "elbo": [(2, 1, -160.75)]}


@pytest.mark.parametrize("content, reason", [
    (b"\x80\x81garbage", r"not UTF-8 text: byte 0x80 at offset 0"),
    (b"a,b\n1,2\n", r"expected FastEstimator CSVLogger columns mode, step, epoch"),
    ((HEADER + "train,1,1,200.5,\ntrain,x,1,1,\n").encode(), r"line 3 does not hold numbers in step, epoch, loss"),
])
def test_a_damaged_log_is_one_line(tmp_path, content, reason):
    log = tmp_path / "train_log.csv"
    log.write_bytes(content)
    with pytest.raises(ValueError) as err:
        read_log(str(log))
    assert str(err.value) == (f"training log {log} is damaged ({reason.replace(chr(92), '')}); delete it (the run's "
                              "earlier rows are lost) or retrain with `pipeline-vae train --fresh`")


def test_the_cli_refuses_a_damaged_log_on_resume_and_in_plot(tmp_path, run_cli):
    run = tmp_path / "run"
    train = ["train", "--epochs", "1", "--batch-size", "50", "--train-steps-per-epoch", "2", "--eval-steps-per-epoch",
             "1", "--save-dir", str(run)]
    assert run_cli(train).returncode == 0
    (run / "train_log.csv").write_bytes(b"\x80" * 300)
    expected = (f"pipeline-vae: error: training log {run / 'train_log.csv'} is damaged (not UTF-8 text: byte 0x80 at "
                "offset 0); delete it (the run's earlier rows are lost) or retrain with `pipeline-vae train --fresh`")
    for args in ([*train[:2], "2", *train[3:]], ["plot", "--save-dir", str(run), "--n-images", "20"]):
        result = run_cli(args)
        assert (result.returncode, result.stderr.strip().splitlines()[-1]) == (2, expected), result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    (run / "train_log.csv").unlink()  # the way out it names
    assert run_cli([*train[:2], "2", *train[3:]]).returncode == 0
