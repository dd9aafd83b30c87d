"""The command line: help lists everything, user errors are one line and exit 2."""
import subprocess
import sys

import pytest

from advlit.cli import main
from advlit.data import available_datasets
from advlit.methods import available_methods


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "advlit.cli", *args], capture_output=True, text=True)


def test_train_help_lists_every_method_and_dataset():
    out = run_cli("train", "--help")
    assert out.returncode == 0
    for name in available_methods():
        assert name in out.stdout
    for name in available_datasets():
        assert name in out.stdout
    for option in ("--method", "--dataset", "--eps", "--alpha-ratio", "--seed", "--out", "--resume"):
        assert option in out.stdout


@pytest.mark.parametrize("args,message", [
    (["train", "--method", "nope", "--out", "x"], "unknown method 'nope'"),
    (["train", "--dataset", "mnist", "--out", "x"], "unknown dataset 'mnist'"),
    (["train", "--eps", "0", "--out", "x"], "eps must lie in (0, 1]"),
    (["train", "--eps", "2", "--out", "x"], "eps must lie in (0, 1]"),
    (["eval", "--checkpoint", "does/not/exist.pt"], "no checkpoint at does/not/exist.pt"),
    (["train", "--out", "x", "--bogus"], "unrecognized arguments"),
    (["train", "--method", "last", "--out", "x"], "framework"),
    (["train", "--eps-ratios", "0", "--out", "x"], "final eps ratios must be positive numbers"),
    (["train", "--eps", "0.2", "--eps-ratios", "6", "--out", "x"], "final eps ratios must be at most 1 / eps"),
    (["train", "--eps-ratios", "two", "--out", "x"], "not a number"),
    (["train", "--precision", "half", "--out", "x"], "unknown precision 'half'; choose fp32, bf16, auto"),
    (["train", "--precision", "fp16", "--out", "x"], "precision fp16 is not supported: it needs a GradScaler"),
    (["train", "--method", "gradalign", "--compile", "--out", "x"], "gradalign cannot be compiled"),
])
def test_user_errors_are_one_line_and_exit_2(args, message):
    out = run_cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("advlit: error:"), out.stderr
    assert message in lines[0]
    assert "Traceback" not in out.stderr


def test_train_then_eval_then_resume(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--method", "fgsm_rs", "--dataset", "digits16", "--eps", "0.2", "--alpha-ratio", "2",
            "--epochs", "2", "--val-subset", "32", "--final-subset", "32", "--attacks", "clean", "pgd-3",
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert (out / "record.json").exists()
    assert main(["eval", "--checkpoint", str(out / "checkpoint.pt"), "--attacks", "clean", "fgsm",
                 "--subset", "32"]) == 0
    printed = capsys.readouterr().out
    assert "clean" in printed and "fgsm" in printed
    assert main(args + ["--resume"]) == 0  # already complete: nothing to do, still fine


def test_eps_ratios_reach_the_record_and_eval(tmp_path, capsys):
    import json

    out = tmp_path / "run"
    assert main(["train", "--method", "fgsm_rs", "--dataset", "digits16", "--eps", "0.2", "--alpha-ratio", "2",
                 "--epochs", "1", "--val-subset", "32", "--final-subset", "32", "--attacks", "clean", "pgd-3",
                 "--eps-ratios", "2", "--out", str(out), "--quiet"]) == 0
    record = json.loads((out / "record.json").read_text())
    assert record["config"]["final_eps_ratios"] == [2.0]
    assert list(record["final"]["last"]) == list(record["final"]["best"]) == ["clean", "pgd-3", "pgd-3@2eps"]
    assert "pgd-3@2eps" in capsys.readouterr().out
    assert main(["eval", "--checkpoint", str(out / "checkpoint.pt"), "--attacks", "clean", "pgd-3", "--subset", "32",
                 "--eps-ratios", "2", "0.5", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["clean", "pgd-3", "pgd-3@2eps", "pgd-3@0.5eps"]


def test_eps_as_fraction():
    from advlit.cli import _number

    assert _number("8/255") == pytest.approx(8 / 255)


def test_method_defaults_fill_only_what_the_command_line_leaves_out(capsys):
    """ATAS on the digits gets the chapter's setting (piecewise LR, c, norm, minimum step);
    a flag or --method-arg wins over a default; methods without defaults get none."""
    from advlit.cli import config_with_method_defaults
    from advlit.experiments import get_config

    config = config_with_method_defaults(1, {"method": "atas", "dataset": "digits16", "eps": 0.2, "alpha_ratio": 2})
    chapter = get_config("atas.atas", "cpu", seed=1)
    assert config.lr_schedule == chapter.lr_schedule == "piecewise" and config.lr == chapter.lr
    assert {k: v for k, v in chapter.method_args.items() if k != "track_norms"} == config.method_args
    assert "lr_schedule=piecewise" in capsys.readouterr().err

    mine = config_with_method_defaults(0, {"method": "atas", "dataset": "digits16", "lr_schedule": "cyclic",
                                           "method_args": {"c": 0.5}})
    assert mine.lr_schedule == "cyclic" and mine.method_args["c"] == 0.5
    assert mine.method_args["min_step_ratio"] == config.method_args["min_step_ratio"]
    assert config_with_method_defaults(0, {"method": "atas", "dataset": "cifar10"}).method_args == \
        {"c": 0.01, "grad_norm": "batch_mean"}
    plain = config_with_method_defaults(0, {"method": "fgsm_rs"})
    assert plain.lr_schedule == "cyclic" and plain.method_args == {}
    assert capsys.readouterr().err.count("advlit:") == 2  # atas (mine), atas on cifar10; nothing for fgsm_rs


def test_an_experiments_method_and_model_args_are_changed_key_by_key():
    """--experiment compare.sub_at --method-arg sub_lr=0.1 changes sub_lr and keeps the
    experiment's sampling epochs (replacing the whole dict silently ran another schedule);
    with another --method the experiment's keys are not carried over."""
    from advlit.cli import experiment_config
    from advlit.experiments import get_config

    none = dict.fromkeys(("method", "model", "method_args", "model_args", "lr"))
    given = get_config("compare.sub_at", "cpu", seed=1)
    mine = experiment_config("compare.sub_at", "cpu", 1, {**none, "method_args": {"sub_lr": 0.1}})
    assert mine.method_args == {**given.method_args, "sub_lr": 0.1} and given.method_args["sub_lr"] == 1.0
    assert mine.seed == 1 and mine.lr == given.lr
    wider = experiment_config("basics.pgd_at", "cpu", 0, {**none, "model_args": {"channels": [64, 128]}})
    assert wider.model_args == {"channels": [64, 128], "pools": [False, True]}
    other = experiment_config("compare.sub_at", "cpu", 0, {**none, "method": "fgsm_rs", "method_args": {}})
    assert other.method == "fgsm_rs" and other.method_args == {}
    assert experiment_config("compare.sub_at", "cpu", 0, none) == get_config("compare.sub_at", "cpu")


def test_precision_options_reach_the_record(tmp_path, monkeypatch):
    """--precision bf16 --channels-last --compile: in the record's config and its resolved
    "precision" entry, and the model is compiled once (nn.Module.compile spied: compiling
    on the CPU takes a minute); without them the record has none of the three."""
    import json

    import torch

    compiled = []
    monkeypatch.setattr("advlit.precision.compile_problem", lambda device: None)
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(self))
    base = ["train", "--method", "fgsm_rs", "--dataset", "digits16", "--eps", "0.2", "--alpha-ratio", "1.25",
            "--epochs", "1", "--val-subset", "32", "--final-subset", "32", "--attacks", "clean", "pgd-3", "--quiet"]
    assert main([*base, "--precision", "bf16", "--channels-last", "--compile", "--out", str(tmp_path / "a")]) == 0
    record = json.loads((tmp_path / "a" / "record.json").read_text())
    assert {k: record["config"][k] for k in ("precision", "channels_last", "compile")} == \
        {"precision": "bf16", "channels_last": True, "compile": True}
    assert record["precision"] == {"precision": "bf16", "device": "cpu", "channels_last": True, "compile": True}
    assert len(compiled) == 1
    assert main([*base, "--out", str(tmp_path / "b")]) == 0
    plain = json.loads((tmp_path / "b" / "record.json").read_text())
    assert "precision" not in plain and not {"precision", "channels_last", "compile"} & set(plain["config"])
    assert len(compiled) == 1
