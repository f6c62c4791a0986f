"""A link that rebuilds the model: encoded in the URL, the same values for every student."""

from __future__ import annotations

import base64
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.core.errors import SpecError
from explorer.core.limits import HOSTED, LOCAL
from explorer.io import links
from explorer.session.experiment import Experiment
from explorer.session.state import realize
from explorer.session.workspace import Workspace

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def worked_session() -> Workspace:
    """The tied net after a seed change, an edit, a training run, a dtype move and a run."""
    ws = Workspace(Experiment.from_preset("tied").replace(materialized=True))
    ws.change(seed=11)
    ws.edit("2.weight", "set", 3.5, (1, 2))
    ws.train({"steps": 4, "batch_size": 8})
    ws.edit("6.bias", "add", 1.0)
    ws.move(dtype="float64")
    ws.backward()
    return ws


def pack(text: bytes, prefix: str = "e1.") -> str:
    return prefix + base64.urlsafe_b64encode(zlib.compress(text, 9)).rstrip(b"=").decode()


def test_a_link_round_trips_the_experiment():
    exp = worked_session().experiment
    token = links.encode(exp)
    assert token.startswith("e1.") and len(token) <= LOCAL.max_link_chars
    assert links.decode(token) == exp


def test_sixty_students_get_sixty_identical_models():
    """Each opening of the link replays edits, training and moves: the same values, bit for bit."""
    ws = worked_session()
    token = links.encode(ws.experiment, HOSTED)
    prints = {realize(links.decode(token, HOSTED), HOSTED).fingerprint() for _ in range(60)}
    assert prints == {ws.state.fingerprint()}


def test_a_link_always_rebuilds_on_the_cpu():
    exp = Experiment.from_preset("tied").replace(
        device="cuda:0", ops=({"op": "move", "device": "cuda:0", "dtype": "float64"},)
    )
    back = links.decode(pack(exp.to_json().encode()))
    assert back.device == "cpu" and back.ops[0]["device"] == "cpu"
    assert back.ops[0]["dtype"] == "float64"


def test_links_go_into_the_url_query():
    token = links.encode(Experiment.from_preset("mlp"))
    assert links.url("http://host:8501/?model=old#x", token) == f"http://host:8501/?model={token}"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "holds no model"),
        ("hello", "not a Parameter Explorer link"),
        ("e1.@@@", "characters a link cannot hold"),
        ("e1.A", "characters a link cannot hold"),
        ("e1.AAAA", "does not decompress"),
        ("e2." + "A" * 10, r"newer explorer \(link format 2\)"),
    ],
)
def test_malformed_links_are_refused_in_one_line(token, message):
    with pytest.raises(SpecError, match=message) as err:
        links.decode(token)
    assert "\n" not in str(err.value)


def test_a_truncated_link_is_refused():
    token = links.encode(worked_session().experiment)
    with pytest.raises(SpecError, match="cut short|does not decompress"):
        links.decode(token[: len(token) * 2 // 3])


def test_a_tampered_link_is_refused_by_its_checksum():
    """No changed character opens another model: it is refused, or (a bit deflate ignores)
    gives the very same experiment."""
    token = links.encode(worked_session().experiment)
    original, refused = links.decode(token), 0
    for i in range(len("e1."), len(token)):
        tampered = token[:i] + ("B" if token[i] != "B" else "C") + token[i + 1 :]
        try:
            assert links.decode(tampered) == original, f"character {i} opened another model"
        except SpecError as err:
            assert "damaged" in str(err) or "cut short" in str(err), str(err)
            refused += 1
    assert refused > 0.95 * (len(token) - 3)


def test_an_oversized_link_is_refused_before_it_is_read():
    with pytest.raises(SpecError, match="over the limit of 8,000"):
        links.decode("e1." + "A" * 9000)


def test_a_zip_bomb_stops_at_the_unpacked_limit():
    bomb = pack(b"{" + b" " * 4_000_000 + b"}")
    assert len(bomb) < LOCAL.max_link_chars  # it fits the URL budget: only unpacking catches it
    with pytest.raises(SpecError, match="larger than 262,144 bytes once unpacked"):
        links.decode(bomb)


def test_a_link_from_a_newer_schema_is_refused():
    data = Experiment.from_preset("mlp").to_dict() | {"version": 99}
    import json

    with pytest.raises(SpecError, match="newer explorer"):
        links.decode(pack(json.dumps(data).encode()))


def test_a_link_with_an_invalid_experiment_names_the_field():
    import json

    data = Experiment.from_preset("mlp").to_dict() | {"seed": -1}
    with pytest.raises(SpecError, match="seed"):
        links.decode(pack(json.dumps(data).encode()))


def test_code_models_never_travel_in_links():
    """A link naming a factory is refused before anything is imported or run."""
    exp = Experiment(spec=None, source="tests/model_files/broken.py:raises")
    with pytest.raises(SpecError, match="written as code"):
        links.encode(exp)
    with pytest.raises(SpecError, match="written as code"):
        links.decode(pack(exp.to_json().encode()))


def test_an_experiment_too_big_for_a_link_says_to_download_it():
    small = replace(LOCAL, max_link_chars=100)
    with pytest.raises(SpecError, match="download it as JSON"):
        links.encode(Experiment.from_preset("rgnet"), small)


# --- in the app ---


def app_with(query: dict) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    return at


@pytest.mark.timeout(180)
def test_opening_a_link_rebuilds_the_model_in_a_new_session():
    ws = worked_session()
    at = app_with({"model": links.encode(ws.experiment)})
    opened = at.session_state["workspace"]
    assert opened.experiment == ws.experiment
    assert opened.state.fingerprint() == ws.state.fingerprint()
    assert not at.error


@pytest.mark.timeout(180)
def test_a_bad_link_opens_the_default_model_with_one_line_of_explanation():
    at = app_with({"model": "e1.AAAA"})
    assert at.session_state["workspace"].experiment.preset == "mlp"
    (box,) = at.error
    assert "The link could not be opened" in box.value and "\n" not in box.value


@pytest.mark.timeout(180)
def test_the_url_follows_the_model_and_the_files_tab_shows_the_link():
    at = app_with({})
    at.selectbox(key="preset_choice").select("tied").run()
    token = at.query_params["model"]
    token = token[0] if isinstance(token, list) else token
    assert links.decode(token) == at.session_state["workspace"].experiment
    label = next(t.label for t in at.tabs if t.label.endswith("Files"))
    at.session_state["tabs"] = label
    at.run()
    assert not at.exception
    assert any(f"?model={token}" in c.value for c in at.code)


def test_a_link_that_would_replay_too_much_is_refused():
    """Ops compress well, so a short link could ask every opener to replay hours of work."""
    import json

    edit = {"op": "edit", "name": "2.weight", "how": "add", "value": 1.0, "index": None}
    data = Experiment.from_preset("tied").to_dict() | {"materialized": True, "ops": [edit] * 501}
    token = pack(json.dumps(data).encode())
    assert len(token) < LOCAL.max_link_chars
    with pytest.raises(SpecError, match="replays 501 value changes, over 500"):
        links.decode(token)
    train = next(op for op in worked_session().experiment.ops if op["op"] == "train")
    data["ops"] = [train | {"steps": 1000}] * 3
    with pytest.raises(SpecError, match="replays 3,000 training steps, over 2,000"):
        links.decode(pack(json.dumps(data).encode()), HOSTED)
