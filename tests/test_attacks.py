"""Attack invariants: eps-ball, [0, 1], strength ordering, restarts, modes."""
import pytest
import torch

from advlit.attacks import autoattack, cw_margin, fgsm, pgd
from advlit.data import get_dataset
from advlit.evaluate import evaluate, parse_attack
from advlit.models import get_model
from advlit.utils import ConfigError


@pytest.fixture(scope="module")
def data():
    test = get_dataset("digits16", "test")
    return test.batch(torch.arange(128))


@pytest.fixture(scope="module")
def trained_model():
    """A small CNN trained for a few epochs on clean digits16 (about 2 s)."""
    torch.manual_seed(0)
    train = get_dataset("digits16", "train")
    model = get_model("small_cnn", 10, (1, 16, 16))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x_all, y_all = train.batch(torch.arange(len(train)))
    for _ in range(8):
        for i in range(0, len(x_all), 64):
            loss = torch.nn.functional.cross_entropy(model(x_all[i:i + 64]), y_all[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def assert_valid(x_adv, x, eps):
    eps = eps.view(-1, *[1] * (x.dim() - 1)) if torch.is_tensor(eps) else eps
    assert torch.all((x_adv - x).abs() <= eps + 1e-6)
    assert x_adv.min() >= 0 and x_adv.max() <= 1


@pytest.mark.parametrize("attack", ["fgsm", "fgsm_rs", "pgd", "cw"])
def test_attacks_stay_in_ball_and_box(trained_model, data, attack):
    x, y = data
    eps = 0.2
    torch.manual_seed(1)
    if attack == "fgsm":
        x_adv = fgsm(trained_model, x, y, eps)
    elif attack == "fgsm_rs":
        x_adv = fgsm(trained_model, x, y, eps, alpha=2 * eps, init="uniform")
    else:
        x_adv = pgd(trained_model, x, y, eps, eps / 4, 7, loss="ce" if attack == "pgd" else "cw")
    assert_valid(x_adv, x, eps)
    assert not torch.equal(x_adv, x)


def test_per_example_eps_step_and_iterations(trained_model, data):
    x, y = data
    n = len(x)
    eps = torch.linspace(0.01, 0.3, n)
    alpha = eps / 3
    steps = torch.arange(n) % 5  # 0..4 iterations
    x_adv = pgd(trained_model, x, y, eps, alpha, steps, random_start=False)
    assert_valid(x_adv, x, eps)
    untouched = steps == 0
    assert torch.equal(x_adv[untouched], x[untouched])
    assert (x_adv[~untouched] != x[~untouched]).flatten(1).any(1).all()


def test_pgd_at_least_as_strong_as_fgsm(trained_model, data):
    x, y = data
    torch.manual_seed(0)
    acc_fgsm = (trained_model(fgsm(trained_model, x, y, 0.1)).argmax(1) == y).float().mean()
    acc_pgd = (trained_model(pgd(trained_model, x, y, 0.1, 0.025, 20)).argmax(1) == y).float().mean()
    acc_clean = (trained_model(x).argmax(1) == y).float().mean()
    assert acc_clean > 0.8
    assert acc_pgd <= acc_fgsm <= acc_clean


def test_restarts_never_weaker_per_example(trained_model, data):
    x, y = data
    torch.manual_seed(3)
    one = pgd(trained_model, x, y, 0.08, 0.02, 5, restarts=1)
    torch.manual_seed(3)
    three = pgd(trained_model, x, y, 0.08, 0.02, 5, restarts=3)
    with torch.no_grad():
        correct_one = trained_model(one).argmax(1) == y
        correct_three = trained_model(three).argmax(1) == y
    assert not torch.any(correct_three & ~correct_one)  # every example broken once stays broken
    assert_valid(three, x, 0.08)


def test_cw_margin_matches_definition():
    logits = torch.tensor([[2.0, 1.0, 0.5], [0.0, 3.0, 1.0]])
    y = torch.tensor([0, 0])
    assert torch.allclose(cw_margin(logits, y), torch.tensor([-1.0, 3.0]))


def test_attacks_do_not_change_model_mode(trained_model, data):
    x, y = data
    trained_model.train()
    pgd(trained_model, x[:8], y[:8], 0.1, 0.05, 2)
    assert trained_model.training
    evaluate(trained_model, (x[:8], y[:8]), 0.1, attacks=["clean", "pgd-2"])
    assert trained_model.training
    trained_model.eval()


def test_evaluate_orders_attacks_and_is_seeded(trained_model, data):
    x, y = data
    res = evaluate(trained_model, (x, y), 0.1, attacks=["clean", "fgsm", "pgd-10", "pgd-10x3", "cw-10"])
    again = evaluate(trained_model, (x, y), 0.1, attacks=["clean", "fgsm", "pgd-10", "pgd-10x3", "cw-10"])
    assert res == again
    # each attack draws its own random starts (evaluate.attack_seed), so pgd-10x3 is not a
    # superset of pgd-10's single run and may come out an example above it on some processors
    # (seen on an AMD EPYC: 26.6 vs 25.8 of 128); the exact per-example property, with shared
    # starts, is test_restarts_never_weaker_per_example
    assert max(res["pgd-10x3"], res["pgd-10"]) <= res["fgsm"] <= res["clean"]


def test_autoattack_fast_subset(trained_model, data):
    x, y = data
    x, y = x[:16], y[:16]
    x_adv = autoattack(trained_model, x, y, 0.1, version="fast", seed=0)
    assert_valid(x_adv, x, 0.1)
    with torch.no_grad():
        acc_aa = (trained_model(x_adv).argmax(1) == y).float().mean()
        acc_clean = (trained_model(x).argmax(1) == y).float().mean()
    assert acc_aa <= acc_clean


def test_apgd_ce_alone_with_the_standard_settings(trained_model, data, monkeypatch):
    """"apgd-ce": AutoAttack's APGD-CE alone, 100 iterations and 1 restart (its standard
    version; a custom AutoAttack would run 5 restarts), in the eps-ball and [0, 1]."""
    from pyautoattack.autopgd_base import APGDAttack

    x, y = data
    x, y = x[:16], y[:16]
    runs = []
    real = APGDAttack.perturb
    monkeypatch.setattr(APGDAttack, "perturb", lambda self, *a, **k: runs.append(
        (self.loss, self.n_iter, self.n_restarts, self.eps)) or real(self, *a, **k))
    x_adv = autoattack(trained_model, x, y, 0.1, version="apgd-ce", seed=0)
    assert runs and set(runs) == {("ce", 100, 1, 0.1)}
    assert_valid(x_adv, x, 0.1)
    spec = parse_attack("apgd-ce")
    assert (spec.kind, spec.version) == ("aa", "apgd-ce")
    res = evaluate(trained_model, (x, y), 0.1, attacks=["clean", "apgd-ce"])
    assert res["apgd-ce"] <= res["clean"]


@pytest.mark.parametrize("name", ["pgd", "pgd-x", "aa-slow", "fgsm-2", "", "apgd", "apgd-t", "apgd-ce-10"])
def test_bad_attack_names_raise_one_clear_error(name):
    with pytest.raises(ConfigError, match="unknown attack"):
        parse_attack(name)


def test_an_attack_does_not_depend_on_the_others_in_the_list(trained_model, data):
    """Each attack draws its random start from its own seed: PGD-2's accuracy is the same
    alone and after other random attacks (it does depend on the evaluation seed)."""
    x, y = data
    alone = evaluate(trained_model, (x, y), 0.2, attacks=["pgd-2"], seed=3)
    listed = evaluate(trained_model, (x, y), 0.2, attacks=["pgd-5", "cw-3x2", "pgd-2"], seed=3)
    assert alone["pgd-2"] == listed["pgd-2"]
    by_seed = {evaluate(trained_model, (x, y), 0.2, attacks=["pgd-2"], seed=s)["pgd-2"] for s in range(4)}
    assert len(by_seed) > 1  # the random start matters, so the first assertion can fail
