import pytest

from dlnotes.params import ParameterError, check_injected, from_profile
from dlnotes.spec import Param, coerce, read_parameters, validate

PROFILES = {"smoke": {"EPOCHS": 1, "LR": 1}, "quick": {"EPOCHS": 5, "LR": 0.5}}


def test_from_profile_takes_profile_values_unless_explicit():
    assert from_profile(PROFILES, "quick", EPOCHS=None, LR=None) == (5, 0.5)
    assert from_profile(PROFILES, "quick", EPOCHS=7, LR=None) == (7, 0.5)
    assert from_profile(PROFILES, "smoke", SEED=3) == (3,)


def test_from_profile_rejects_unknown_profile_and_missing_value():
    with pytest.raises(ParameterError, match="unknown PROFILE 'huge'.*smoke, quick"):
        from_profile(PROFILES, "huge", EPOCHS=None)
    with pytest.raises(ParameterError, match="WIDTH is None"):
        from_profile(PROFILES, "quick", WIDTH=None)


def test_read_parameters_types_from_defaults_and_profiles(project):
    spec = read_parameters(project / "notebooks" / "01_tiny.py")
    assert list(spec.params)[:6] == ["PROFILE", "DEVICE", "SEED", "STEPS", "LR", "FAIL"]
    assert spec.params["STEPS"].kind is int  # from the profiles, since the default is None
    assert spec.params["LR"].kind is float
    assert spec.params["FAIL"].kind is bool
    assert spec.params["LR"].help == "learning rate (0, 10]"
    assert spec.profiles["full"] == {"STEPS": 50}
    assert spec.resolved({"PROFILE": "smoke"})["STEPS"] == 2


def test_read_parameters_refuses_code_in_parameters_cell(tmp_path):
    path = tmp_path / "01_bad.py"
    path.write_text('# %% tags=["parameters"]\nEPOCHS = 3\nprint(EPOCHS)\n')
    with pytest.raises(ParameterError, match="only NAME = literal"):
        read_parameters(path)


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        (int, "3", 3),
        (float, "3", 3.0),
        (float, "1e-3", 1e-3),
        (bool, "true", True),
        (bool, "False", False),
        (str, "3", "3"),
        (str, "relu,sin", "relu,sin"),
        (list, "a, b", ["a", "b"]),
        (list, "[1, 2]", [1, 2]),
        (int, 4, 4),
    ],
)
def test_coerce_accepts_matching_values(kind, raw, expected):
    value = coerce(Param("X", None, kind, ""), raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("kind", "raw"), [(int, "3.5"), (int, "abc"), (float, "fast"), (bool, "yes"), (int, "True")]
)
def test_coerce_refuses_wrong_types(kind, raw):
    with pytest.raises(ParameterError, match="parameter X expects"):
        coerce(Param("X", None, kind, ""), raw)


def test_validate_names_the_close_match_and_lists_parameters(project):
    spec = read_parameters(project / "notebooks" / "01_tiny.py")
    with pytest.raises(ParameterError) as err:
        validate("01_tiny", spec, {"STEP": "3"})
    message = str(err.value)
    assert "unknown parameter 'STEP'" in message and "Did you mean STEPS?" in message
    assert "LR (float, default 0.1): learning rate" in message


def test_validate_checks_profile_and_device(project):
    spec = read_parameters(project / "notebooks" / "01_tiny.py")
    assert validate("01_tiny", spec, {"STEPS": "9", "LR": "1"}) == {"STEPS": 9, "LR": 1.0}
    with pytest.raises(
        ParameterError, match="PROFILE must be one of smoke, quick, full, got 'fast'"
    ):
        validate("01_tiny", spec, {"PROFILE": "fast"})
    with pytest.raises(
        ParameterError, match="DEVICE must be one of auto, cpu, cuda, mps, got 'tpu'"
    ):
        validate("01_tiny", spec, {"DEVICE": "tpu"})


def test_read_parameters_takes_ranges_and_choices_from_the_comments(tmp_path):
    path = tmp_path / "01_x.py"
    path.write_text(
        '# %% tags=["parameters"]\n'
        'PROFILE = "quick"  # smoke: tests | quick: minutes | full: the reports\' scale\n'
        'LOSS = "mse"  # mse: squared error | ce: cross-entropy\n'
        'MODEL = "m"  # a model name\n'
        "SHARE = 0.3  # held out (0, 1)\n"
        "EPOCHS = None  # epochs [1, inf)\n"
        "# %%\n"
        'PROFILES = {"smoke": {"EPOCHS": 1}, "quick": {"EPOCHS": 0}, "full": {"EPOCHS": 9}}\n'
    )
    spec = read_parameters(path)
    assert spec.params["PROFILE"].choices == ("smoke", "quick", "full")
    assert spec.params["LOSS"].choices == ("mse", "ce") and spec.params["MODEL"].choices is None
    assert spec.params["SHARE"].bounds == (0.0, 1.0, False, False)
    assert spec.params["EPOCHS"].bounds == (1.0, float("inf"), True, False)
    assert validate("01_x", spec, {"LOSS": "ce", "SHARE": "0.5", "PROFILE": "full"})
    with pytest.raises(ParameterError, match=r"LOSS must be one of mse, ce, got 'cee'.*'ce'"):
        validate("01_x", spec, {"LOSS": "cee"})
    with pytest.raises(ParameterError, match=r"SHARE must be a number in \(0, 1\), got 1.0"):
        validate("01_x", spec, {"SHARE": "1"})
    with pytest.raises(ParameterError, match="MODEL must not be empty"):
        validate("01_x", spec, {"MODEL": " "})
    # A profile value outside the declared range is caught before anything runs.
    with pytest.raises(ParameterError, match=r"EPOCHS must be .* got 0 \(profile 'quick'\)"):
        validate("01_x", spec, {})


_DECLARED = 'PROFILE = "quick"  # smoke: s | quick: q\nSTEPS = None  # steps [1, 100]\n'
_PROFILES = 'PROFILES = {"smoke": {"STEPS": 1}, "quick": {"STEPS": 5}}\ncheck_injected(In)\n'


@pytest.mark.parametrize(
    ("injected", "message"),
    [
        ("NOPE = 1", "unknown parameter 'NOPE' for this chapter"),
        ("STEPZ = 1", "Did you mean STEPS?"),
        ("STEPS = 0", r"STEPS must be an integer in \[1, 100\], got 0"),
        ("STEPS = 2.5", "STEPS expects an integer"),
        ("PROFILE = 'turbo'", "PROFILE must be one of smoke, quick"),
    ],
)
def test_check_injected_refuses_what_plain_papermill_passes(injected, message):
    history = ["", _DECLARED, f"# Parameters\n{injected}\n", _PROFILES]
    with pytest.raises(ParameterError, match=message):
        check_injected(history)


def test_check_injected_accepts_declared_values_and_runs_without_papermill():
    check_injected(["", _DECLARED, "# Parameters\nSTEPS = 7\nPROFILE = 'smoke'\n", _PROFILES])
    check_injected(["", _DECLARED, _PROFILES])  # a run in Jupyter: nothing injected
    check_injected([])
