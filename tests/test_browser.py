"""A real browser drives the course: JupyterLab, a live kernel, a widget, a redraw.

The server is started with :func:`crfkit.course.lab_command` (what ``make lab`` runs)
plus a port, a token and ``--no-browser``, on loopback, with throw-away settings
and runtime folders. Headless Chromium (Debian's ``chromium``, driven by Playwright
with ``executable_path``; no browser is ever downloaded) opens a copy of lecture 00,
runs all cells, drags the temperature slider, and checks that the widget's output
(its summary line and its figure) was redrawn.

Locally the test is skipped when Chromium is missing; under ``CI=true`` that is a
failure, so CI can never pass without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from crfkit.course import REPO, lab_command

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDGET_NOTEBOOK = REPO / "lectures" / "00_welcome.ipynb"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but Chromium is missing: .ci/run installs Debian's `chromium`")
    pytest.skip("Chromium is not installed (apt-get install chromium); the browser test needs it")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def lab_server(tmp_path):
    """JupyterLab serving a copy of lecture 00; yields (base_url, token, notebook name)."""
    root = tmp_path / "course"
    root.mkdir()
    nb = nbformat.read(WIDGET_NOTEBOOK, as_version=4)
    for cell in nb.cells:  # start from a blank notebook: every output must come from the kernel
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    # the kernel of the Python running the tests (the course venv), found without any user set-up
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    name = "welcome.ipynb"
    nbformat.write(nb, root / name)

    settings = tmp_path / "settings"
    _write_json(
        settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
        # no kernel dialog; render every cell (the default "full" windowing drops cells
        # scrolled out of view from the page, the widget among them)
        {"autoStartDefaultKernel": True, "windowingMode": "none"},
    )
    _write_json(
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    env = dict(os.environ)
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        CRFKIT_DEVICE="cpu",
    )
    port, token = _free_port(), secrets.token_hex(16)
    cmd = lab_command(
        root_dir=root,
        open_path=name,
        extra=[
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            "--LabApp.expose_app_in_browser=True",
        ],
    )
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited early:\n{(tmp_path / 'lab.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer in 90 s:\n{(tmp_path / 'lab.log').read_text()}")
            time.sleep(0.5)
        yield base, token, name
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_lab_serves_the_lectures(lab_server):
    """The server answers, and the lecture is listed and readable through its API."""
    base, token, name = lab_server
    with urllib.request.urlopen(f"{base}/api/contents/{name}?token={token}", timeout=10) as r:
        model = json.load(r)
    assert model["type"] == "notebook"
    assert "How this course works" in json.dumps(model["content"]["cells"][0]["source"])
    with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10) as r:
        assert r.status == 200
        assert "JupyterLab" in r.read().decode()


@contextlib.contextmanager
def _running_notebook(lab_server, name: str, shot: Path):
    """Headless Chromium on the lab's notebook ``name``: waits for its kernel, runs all cells,
    yields the page; screenshots to ``shot`` (also on failure, path printed) and closes."""
    executable = _chromium()
    try:
        from playwright import sync_api as playwright
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but the playwright package is missing (make setup installs it)")
        pytest.skip("the playwright package is not installed (make setup installs it)")
    base, token, _ = lab_server
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/{name}?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            # wait until this notebook's kernel is up (autoStartDefaultKernel: no dialog), then run all
            page.wait_for_function(
                """(name) => {
                    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                    const k = w && w.context && w.context.path.endsWith(name) && w.sessionContext
                              && w.sessionContext.session && w.sessionContext.session.kernel;
                    return k && k.status === 'idle';
                }""",
                arg=name.split("/")[-1],
                timeout=90_000,
            )
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            yield page
            page.screenshot(path=str(shot), full_page=False)
        except Exception:
            page.screenshot(path=str(shot), full_page=False)
            print(f"browser screenshot at failure: {shot}")
            raise
        finally:
            browser.close()


def test_widget_redraws_in_the_browser(lab_server, tmp_path):
    with _running_notebook(lab_server, lab_server[2], tmp_path / "browser.png") as page:
        slider = page.locator(".widget-slider .noUi-handle").first
        slider.wait_for(timeout=120_000)
        output = page.locator(".widget-output").first
        page.wait_for_function(
            """() => { const o = document.querySelector('.widget-output');
                       return o && o.innerText.includes('T = 1.00') && o.querySelector('img'); }""",
            timeout=60_000,
        )
        before_text = output.inner_text()
        before_img = output.locator("img").first.get_attribute("src")

        # drag the slider handle to the right, as a person would
        slider.scroll_into_view_if_needed()
        box = slider.bounding_box()
        assert box is not None, "the slider handle is not rendered"
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 60, y, steps=8)
        page.mouse.up()

        page.wait_for_function(
            """(old) => { const o = document.querySelector('.widget-output');
                          return o && o.innerText.includes('T = ') && o.innerText !== old
                                 && o.querySelector('img'); }""",
            arg=before_text,
            timeout=60_000,
        )
        after_text = output.inner_text()
        after_img = output.locator("img").first.get_attribute("src")

    assert "T = 1.00" in before_text
    assert "T = 1.00" not in after_text, after_text
    assert after_text.startswith("T = "), after_text
    assert before_img and after_img and before_img != after_img, "the figure was not redrawn"


MEAN_FIELD_CELLS = [
    "import torch\n"
    "import crfkit as ck\n"
    "from crfkit.data.photos import photo\n"
    "\n"
    "image = 255 * photo('astronaut', max_side=128)[:, 40:104, 40:104]  # [3, 64, 64]\n"
    "labels = (image.mean(0) > 110).long() + (image[0] > image[2] + 30).long()  # [64, 64] in 0..2\n"
    "gen = torch.Generator().manual_seed(0)\n"
    "clean = torch.nn.functional.one_hot(labels, 3).permute(2, 0, 1).float() * 0.5 + 0.5 / 3\n"
    "probs = 0.5 * clean + 0.5 * torch.rand(3, 64, 64, generator=gen)  # a noisy labelling\n"
    "unary = -(probs / probs.sum(0)).log()  # [K, H, W]",
    "ck.widgets.MeanFieldExplorer(image, unary, iterations=5)",
]


def test_mean_field_widget_redraws_in_the_browser(lab_server, tmp_path):
    """A notebook building a MeanFieldExplorer on a 64x64 crop runs in the lab; moving its
    iteration slider with the keyboard redraws the summary line and the figure."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in MEAN_FIELD_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    name = "mean_field.ipynb"
    nbformat.write(nb, tmp_path / "course" / name)  # the root the lab_server fixture serves
    with _running_notebook(lab_server, name, tmp_path / "browser_mean_field.png") as page:
        output = page.locator(".widget-output").first
        page.wait_for_function(
            """() => { const o = document.querySelector('.widget-output');
                       return o && o.innerText.includes('t = 5/5') && o.querySelector('img'); }""",
            timeout=120_000,
        )
        before_text = output.inner_text()
        before_img = output.locator("img").first.get_attribute("src")

        # the first slider of the widget is the iteration slider: focus its handle, go to t = 0
        handle = page.locator(".widget-slider .noUi-handle").first
        handle.scroll_into_view_if_needed()
        handle.click()
        handle.press("Home")
        page.wait_for_function(
            """() => { const o = document.querySelector('.widget-output');
                       return o && o.innerText.includes('t = 0/5') && o.querySelector('img'); }""",
            timeout=60_000,
        )
        after_text = output.inner_text()
        after_img = output.locator("img").first.get_attribute("src")

    assert before_text.startswith("t = 5/5: "), before_text
    assert after_text.startswith("t = 0/5: 0.0 % of pixels changed"), after_text
    assert before_img and after_img and before_img != after_img, "the figure was not redrawn"
