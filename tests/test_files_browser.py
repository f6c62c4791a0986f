"""The Files tab and links in Debian's Chromium: links good and bad, uploads safe and loaded."""

from __future__ import annotations

import io
import os
import re
import tomllib
from pathlib import Path

import models
import pytest
import torch

from explorer.core.limits import HOSTED, LOCAL, MIB
from explorer.io import links
from explorer.session.experiment import Experiment

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parent.parent


def expect():
    from playwright.sync_api import expect as _expect

    return _expect


def row(page, node_id):
    return page.locator(f'.row[data-id="{node_id}"]')


def open_url(page, url: str) -> None:
    page.goto(url)
    page.locator('.row[data-id=""]').wait_for(timeout=60_000)


def tied_token() -> str:
    exp = Experiment.from_preset("tied").replace(materialized=True, seed=5)
    return links.encode(exp)


def test_server_upload_limit_matches_the_uploader():
    """config.toml's maxUploadSize is the hosted profile's limit in MB (a server started from
    the file alone is safe); `make run` passes the local profile's on the command line."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == HOSTED.max_upload_bytes // MIB
    makefile = (ROOT / "Makefile").read_text()
    assert f"--server.maxUploadSize {LOCAL.max_upload_bytes // MIB}" in makefile


def test_a_good_link_opens_its_model(page, streamlit_server):
    base = streamlit_server("app.py")
    open_url(page, f"{base}/?model={tied_token()}")
    expect()(row(page, "4/weight")).to_contain_text("(8, 8)", timeout=30_000)
    expect()(page.get_by_text("seed 5").first).to_be_visible()
    expect()(page.get_by_text("could not be opened")).to_have_count(0)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda t: t[: len(t) // 2], "cut short|damaged"),
        (lambda t: t[:40] + ("B" if t[40] != "B" else "C") + t[41:], "damaged"),
        (lambda t: "e1." + "A" * 9000, "over the limit"),
    ],
    ids=["truncated", "tampered", "oversized"],
)
def test_a_bad_link_opens_the_default_model_with_one_line(page, streamlit_server, make, why):
    base = streamlit_server("app.py")
    open_url(page, f"{base}/?model={make(tied_token())}")
    note = page.get_by_text(re.compile("The link could not be opened"))
    expect()(note).to_be_visible(timeout=30_000)
    expect()(note).to_contain_text(re.compile(why))
    expect()(row(page, "0/weight")).to_contain_text("?")  # the chapter's lazy MLP


def open_files_tab(page) -> None:
    page.get_by_role("tab", name=re.compile("Files")).click()
    expect()(page.get_by_text("Open a checkpoint")).to_be_visible(timeout=30_000)


def upload(page, name: str, data: bytes) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        {"name": name, "mimeType": "application/octet-stream", "buffer": data}
    )


def test_uploading_a_state_dict_inspects_and_loads_it(page, streamlit_server):
    base = streamlit_server("app.py")
    open_url(page, f"{base}/?model={tied_token()}")
    open_files_tab(page)
    buf = io.BytesIO()
    torch.save(models.tied_net(seed=3).state_dict(), buf)
    upload(page, "seed3.pt", buf.getvalue())
    expect()(page.get_by_text("seed3.pt: pytorch, 8 keys")).to_be_visible(timeout=30_000)
    expect()(page.get_by_text("tied A").first).to_be_visible()  # the file's own tree
    page.get_by_role("tab", name="Load into the model").click()
    page.get_by_role("button", name="Load into the model").click()
    expect()(page.get_by_text("Loaded 8 keys.")).to_be_visible(timeout=30_000)


def test_uploading_a_pickle_that_runs_code_is_refused(page, streamlit_server, tmp_path):
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    base = streamlit_server("app.py")
    open_url(page, base)
    open_files_tab(page)
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(1), "p": Payload()}, buf)
    upload(page, "evil.pt", buf.getvalue())
    expect()(page.get_by_text(re.compile("was not read"))).to_be_visible(timeout=30_000)
    upload(page, "evil.pth", pickle.dumps(Payload()))
    expect()(page.get_by_text(re.compile("raw pickle"))).to_be_visible(timeout=30_000)
    assert not marker.exists()
