"""``advlit bench``: side-by-side cost per training step on synthetic data."""
import json

import pytest
import torch

from advlit.bench import bench, format_bench, write_bench_page
from advlit.cli import main

TINY = dict(batch_size=8, steps=2, warmup=1, rounds=2, eval_attacks=["fgsm", "pgd-2"])


@pytest.fixture(scope="module")
def tiny():
    return bench(methods=["fgsm_rs", "pgd_at"], **TINY)


def test_bench_numbers_are_sane(tiny):
    res = tiny["results"]
    assert list(res) == ["fgsm_rs", "pgd_at"]
    for r in res.values():
        assert r["seconds_per_step"] > 0 and r["images_per_second"] > 0
        assert r["seconds_per_step"] <= r["median_seconds_per_step"]
        assert len(r["rounds"]) == 2
        assert r["peak_memory_mb"] == "n/a"  # CPU: no per-method peak
    assert res["fgsm_rs"]["ratio_to_fgsm_rs"] == pytest.approx(1.0)
    assert res["fgsm_rs"]["median_ratio_to_fgsm_rs"] == pytest.approx(1.0)
    assert res["pgd_at"]["ratio_to_fgsm_rs"] > 0
    assert set(tiny["evaluation"]) == {"fgsm", "pgd-2"}
    assert all(v["seconds_per_batch"] > 0 for v in tiny["evaluation"].values())
    # the chapter's settings are used where the ATAS chapter has an experiment
    assert res["pgd_at"]["settings_from"] == "atas.pgd_at" and res["pgd_at"]["alpha_ratio"] == 0.25
    assert "fgsm_rs" in format_bench(tiny)


def test_the_model_is_the_profiles_stand_in_unless_named(tiny):
    """Without --model the bench times the model the cpu chapters train (issue 14: the
    stand-in), so its ratios compare with the chapters' side-by-side timings."""
    from advlit.bench import _bench_model
    from advlit.experiments import PROFILES

    cpu = PROFILES["cpu"]
    assert (tiny["settings"]["model"], tiny["settings"]["model_args"]) == (cpu["model"], cpu.get("model_args", {}))
    assert _bench_model(None, None, "digits16", "cpu", "small_cnn") == (cpu["model"], cpu.get("model_args", {}))
    assert _bench_model("small_cnn", None, "digits16", "cpu", "x") == ("small_cnn", {})
    assert _bench_model(None, None, "cifar10", "cpu", "preact_resnet18") == ("preact_resnet18", {})
    assert _bench_model("conv_net", {"channels": [8]}, "digits16", "cpu", "x") == ("conv_net", {"channels": [8]})
    assert cpu["model"] in format_bench(tiny)


def test_cli_model_arguments(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "--methods", "fgsm_rs", "--model", "conv_net", "--model-arg", "channels=[8,16]",
                 "--model-arg", "pools=[false,true]", "--steps", "1", "--warmup", "0", "--rounds", "1",
                 "--attacks", "fgsm", "--out", str(out)]) == 0
    settings = json.loads(out.read_text())["settings"]
    assert settings["model_args"] == {"channels": [8, 16], "pools": [False, True]}
    assert '"channels": [8, 16]' in capsys.readouterr().out


def test_json_and_page(tiny, tmp_path):
    path = tmp_path / "bench_cpu.json"
    path.write_text(json.dumps(tiny))
    data = json.loads(path.read_text())
    assert data["device"] and data["torch"] and data["device_type"] == "cpu"
    assert data["settings"]["batch_size"] == 8
    md = write_bench_page([path], tmp_path / "bench.md").read_text()
    assert data["device"] in md and data["date"] in md and "| fgsm_rs |" in md
    assert "No `advlit bench`" in write_bench_page([], tmp_path / "empty.md").read_text()


def test_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "--methods", "fgsm_rs", "--batch-size", "4", "--steps", "1", "--warmup", "0",
                 "--rounds", "1", "--attacks", "fgsm", "--out", str(out)]) == 0
    assert "fgsm_rs" in capsys.readouterr().out
    assert json.loads(out.read_text())["device"]


@pytest.mark.parametrize("args,message", [
    (["--methods", "nope"], "unknown method 'nope'"),
    (["--model", "nope"], "unknown model 'nope'"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--steps", "0"], "must be a positive integer"),
    (["--attacks", "pgd-x"], "unknown attack"),
    (["--device", "nope"], "unknown device"),
])
def test_bad_arguments_are_one_line(args, message, capsys):
    assert main(["bench", "--steps", "1", "--warmup", "0", "--rounds", "1", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("advlit: error:") and message in err[0], err


# ------------------------------------------------------------ precision options (advlit.precision)
def test_bf16_channels_last_are_stored_and_shown(tmp_path):
    out = bench(methods=["fgsm_rs", "pgd_at"], precision="bf16", channels_last=True, **TINY)
    s = out["settings"]
    assert (s["precision"], s["channels_last"], s["compile"]) == ("bf16", True, False)
    assert s["precision_label"] == "bf16 autocast + channels_last"
    assert all(r["autocast_verdict"] == "yes" and r["compiled"] is False for r in out["results"].values())
    assert all(r["seconds_per_step"] > 0 for r in out["results"].values())
    assert "bf16 autocast + channels_last" in format_bench(out).splitlines()[0]
    path = tmp_path / "bench_bf16.json"
    path.write_text(json.dumps(out))
    md = write_bench_page([path], tmp_path / "bench.md").read_text()
    assert "; bf16 autocast + channels_last**" in md


def test_fp32_is_labelled_and_old_files_keep_their_title(tiny):
    assert tiny["settings"]["precision"] == "fp32" and format_bench(tiny).splitlines()[0].endswith("; fp32")
    old = json.loads(json.dumps(tiny))  # a file written before the precision options
    for key in ("precision", "channels_last", "compile", "precision_label"):
        del old["settings"][key]
    assert format_bench(old).splitlines()[0].endswith("warm-up steps")


def test_cli_precision_options(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "--methods", "fgsm_rs", "--batch-size", "4", "--steps", "1", "--warmup", "0",
                 "--rounds", "1", "--attacks", "fgsm", "--precision", "bf16", "--channels-last",
                 "--out", str(out)]) == 0
    assert "bf16 autocast + channels_last" in capsys.readouterr().out
    s = json.loads(out.read_text())["settings"]
    assert (s["precision"], s["channels_last"], s["compile"]) == ("bf16", True, False)
    assert main(["bench", "--steps", "1", "--precision", "fp16"]) == 2
    assert "invalid choice: 'fp16'" in capsys.readouterr().err


@pytest.mark.slow
def test_compile_runs_and_marks_what_cannot_be_compiled():
    """torch.compile on the CPU (about a minute of compilation here); GradAlign's double
    backprop cannot be compiled, so it runs uncompiled and its row says so."""
    from advlit.precision import compile_problem

    if compile_problem(torch.device("cpu")):
        pytest.skip(compile_problem(torch.device("cpu")))
    out = bench(methods=["fgsm_rs", "gradalign"], batch_size=8, steps=1, warmup=1, rounds=1, eval_attacks=[],
                compile=True)
    res = out["results"]
    assert out["settings"]["compile"] is True and res["fgsm_rs"]["compiled"] is True
    assert res["gradalign"]["compiled"] is False and "double backprop" in res["gradalign"]["compile_note"]
    assert "gradalign (not compiled)" in format_bench(out)
