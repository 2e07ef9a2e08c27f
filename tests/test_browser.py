"""The notebooks in a real browser: JupyterLab on 127.0.0.1, driven by headless Chromium.

Notebook 02 on a tiny configuration: run every cell, set the training widget to many epochs,
click Train, watch the curves redrawn at least twice, click Stop, find the interrupted
checkpoint, click Resume and see the run finish. Screenshots of each step go to the folder
printed at the start of the test (under pytest's temporary folder).

It needs Chromium and its driver (`apt-get install chromium chromium-driver`); without them it
is skipped, saying so, except where EMOTION_TL_REQUIRE_BROWSER=1 (`.ci/run`), where it fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import papermill
import pytest
from test_notebooks import NOTEBOOKS, make_smoke_data

INSTALL = "apt-get install chromium chromium-driver"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM = next(filter(None, map(shutil.which, BROWSERS)), None)
DRIVER = shutil.which("chromedriver")
MISSING = not (CHROMIUM and DRIVER)
if MISSING and os.environ.get("EMOTION_TL_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"The browser test must run here: install Chromium ({INSTALL}).")
pytestmark = pytest.mark.skipif(MISSING, reason=f"needs Chromium and chromedriver: {INSTALL}")

WAIT = 120  # seconds for any one step


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def set_parameters(source: Path, target: Path, parameters: dict) -> None:
    """Copy a notebook, its parameters cell replaced by `parameters`."""
    notebook = nbformat.read(source, as_version=4)
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    cell.source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    nbformat.write(notebook, target)


def wait_for(condition, what: str, timeout: float = WAIT):
    """Poll `condition` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a folder with tiny data, on a free port with a random token."""
    root = tmp_path_factory.mktemp("lab")
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--expose-app-in-browser",  # window.jupyterapp: run cells as the Run menu does
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    # No "notified about Jupyter news?" pop-up over the buttons.
    settings = root / ".lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = os.environ | {
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter"),
        "JUPYTERLAB_SETTINGS_DIR": str(root / ".lab-settings"),
        "MPLBACKEND": "agg",
    }
    log = (root / "lab.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return server.poll() is not None  # stop waiting if it died

    try:
        wait_for(ready, "JupyterLab to start")
        assert server.poll() is None, (root / "lab.log").read_text()
        yield {"root": root, "base": base, "token": token}
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1800"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    screenshots = lab["root"] / "screenshots"
    screenshots.mkdir()
    print(f"screenshots: {screenshots}")
    driver.shots = screenshots
    yield driver
    driver.quit()


def open_and_run_all(driver, lab, name: str) -> None:
    """Open notebook `name` in JupyterLab and run every cell, as Run > Run All Cells does."""
    driver.get(f"{lab['base']}/lab/tree/{name}?token={lab['token']}")
    ready = (
        "const app = window.jupyterapp; const panel = app && app.shell.currentWidget;"
        f"return !!(panel && panel.context && panel.context.path === '{name}'"
        " && panel.sessionContext && panel.sessionContext.session"
        " && panel.sessionContext.session.kernel"
        " && panel.sessionContext.session.kernel.status === 'idle');"
    )
    wait_for(lambda: driver.execute_script(ready), f"{name} to open with an idle kernel")
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")


def texts(driver, selector: str) -> list[str]:
    """The text of every element matching `selector`, read in one go (widgets redraw: elements
    found one call earlier may be gone by the next)."""
    script = "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText);"
    return driver.execute_script(script, selector)


def click(driver, text: str) -> None:
    from selenium.webdriver.common.by import By

    button = driver.find_element(By.XPATH, f"//button[normalize-space(.)='{text}']")
    assert button.is_enabled(), f"'{text}' is disabled"
    button.click()


def test_training_widget_live_curves_stop_and_resume(lab, browser, tiny):
    try:
        train_stop_and_resume(lab, browser, tiny)
    except BaseException:
        browser.save_screenshot(str(browser.shots / "failed_02.png"))
        raise


def test_upload_a_photo_in_the_compare_notebook(lab, browser, tiny):
    """02 and 03 run headless (papermill), then 04 in the browser: a picture sent through the
    upload's file input gets both models' probabilities and their Grad-CAM."""
    from selenium.webdriver.common.by import By

    root = lab["root"]
    for name in ("02_frozen_weights", "03_finetuning"):
        papermill.execute_notebook(NOTEBOOKS / f"{name}.ipynb", root / f"{name}_run.ipynb",
                                   parameters=tiny, kernel_name="python3", cwd=root,
                                   progress_bar=False)  # fmt: skip
    set_parameters(NOTEBOOKS / "04_compare.ipynb", root / "04.ipynb", tiny)
    try:
        open_and_run_all(browser, lab, "04.ipynb")
        button = ".widget-upload"
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, button), "the upload widget")
        # A click on the widget clicks its file input, which ipywidgets keeps out of the page
        # and which would open the system's file dialog. Put the input into the page instead,
        # then choose the file through it as the dialog would.
        browser.execute_script(
            "const click = HTMLInputElement.prototype.click;"
            "HTMLInputElement.prototype.click = function () {"
            "  if (this.type !== 'file') { return click.call(this); }"
            "  this.id = 'chosen-file'; this.style.display = 'block';"
            "  document.body.appendChild(this);"
            "};"
        )
        browser.find_element(By.CSS_SELECTOR, button).click()
        picture = Path(tiny["data_dir"]) / "square" / "square_000.png"
        browser.find_element(By.ID, "chosen-file").send_keys(str(picture))

        def answer() -> str:
            found = texts(browser, ".widget-html")
            return next((t for t in found if "Probability of each category" in t), "")

        assert "square_000.png" in wait_for(answer, "the uploaded photo's prediction")
        table = browser.find_element(By.CSS_SELECTOR, ".emotion-tl-photo-table table")
        assert "frozen_weights" in table.text and "finetuning" in table.text
        figure = ".widget-image[src^='blob:'], .widget-image[src^='data:']"
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, figure), "the Grad-CAM figure")
        browser.save_screenshot(str(browser.shots / "04_photo.png"))
    except BaseException:
        browser.save_screenshot(str(browser.shots / "failed_04.png"))
        raise


@pytest.fixture(scope="module")
def tiny(lab) -> dict:
    """Notebook parameters for a run of seconds, on tiny drawn shapes inside the served folder."""
    root = lab["root"]
    return {
        "data_dir": str(make_smoke_data(root / "images")), "categories": ["circle", "square"],
        "epochs": 2, "batch_size": 4, "device": "cpu",
        "checkpoint_dir": str(root / "checkpoints"), "image_size": 64,
        "max_images_per_category": 6, "pretrained": False,
        # Without the cache each frozen epoch runs the backbone: slow enough to click Stop.
        "feature_cache": False,
    }  # fmt: skip


def train_stop_and_resume(lab, browser, parameters) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    root, checkpoints = lab["root"], Path(parameters["checkpoint_dir"])
    set_parameters(NOTEBOOKS / "02_frozen_weights.ipynb", root / "02.ipynb", parameters)
    open_and_run_all(browser, lab, "02.ipynb")
    train = "//button[normalize-space(.)='Train frozen_weights']"
    wait_for(lambda: browser.find_elements(By.XPATH, train), "the widget (last cell) to render")
    assert (checkpoints / "frozen_weights_final.pt").is_file()  # the notebook's own run
    browser.save_screenshot(str(browser.shots / "02_widget.png"))

    # Type 50 (its maximum) into the epochs slider's readout, as a learner would.
    readout = browser.find_elements(By.CSS_SELECTOR, ".widget-hslider .widget-readout")[0]
    readout.click()
    readout.send_keys(Keys.CONTROL, "a")
    readout.send_keys("50", Keys.ENTER)
    click(browser, "Train frozen_weights")

    def curve() -> str | None:
        images = browser.find_elements(By.CSS_SELECTOR, ".emotion-tl-curves")
        return images[0].get_attribute("src") if images else None

    def status() -> str:
        return " ".join(texts(browser, ".widget-html"))

    seen: set[str] = set()

    def two_updates() -> bool:
        source = curve()
        if source:
            seen.add(source)
        return len(seen) >= 2

    wait_for(two_updates, "the live curves to be redrawn twice")
    assert "Epoch" in status()
    browser.save_screenshot(str(browser.shots / "02_live_curves.png"))
    assert not browser.find_element(
        By.XPATH, train
    ).is_enabled()  # no second run while one is going
    click(browser, "Stop")
    wait_for(lambda: "Stopped" in status(), "the run to stop")
    browser.save_screenshot(str(browser.shots / "02_stopped.png"))
    (interrupted,) = checkpoints.glob("widget_runs/frozen_*_e50_*/frozen_weights_interrupted.pt")
    history = (interrupted.parent / "frozen_weights_history.csv").read_text().splitlines()
    assert 2 <= len(history) - 1 < 50  # stopped part-way, after at least two epochs

    click(browser, "Resume")
    wait_for(lambda: "Done" in status(), "the resumed run to finish", timeout=240)
    browser.save_screenshot(str(browser.shots / "02_done.png"))
    assert (interrupted.parent / "frozen_weights_final.pt").is_file()
    assert "stopped" in status() and "done" in status()  # the table of runs


def test_cleaner_sets_a_file_aside_and_undoes_it(lab, browser, tiny):
    """Notebook 01's cleaner in JupyterLab: choose "set aside" for the first suspect, Apply
    moves the file into _set_aside/, Undo puts the same bytes back."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    data_dir = Path(tiny["data_dir"])
    before = {p: p.read_bytes() for p in data_dir.rglob("*.png")}
    set_parameters(NOTEBOOKS / "01_explore_data.ipynb", lab["root"] / "01.ipynb", tiny)
    try:
        open_and_run_all(browser, lab, "01.ipynb")
        card_choice = ".widget-gridbox select"
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, card_choice), "the cleaner")
        card = browser.find_element(By.CSS_SELECTOR, ".widget-gridbox .widget-vbox")
        file = card.find_element(By.CSS_SELECTOR, ".widget-html b").text
        Select(card.find_element(By.CSS_SELECTOR, "select")).select_by_visible_text("set aside")
        apply = "//button[normalize-space(.)='Apply (1)']"
        wait_for(lambda: browser.find_elements(By.XPATH, apply), "Apply to count the choice")
        click(browser, "Apply (1)")

        def message() -> str:
            return " ".join(texts(browser, ".widget-html"))

        wait_for(lambda: "Moved 1 file(s);" in message(), "the move")
        browser.save_screenshot(str(browser.shots / "01_cleaner_applied.png"))
        label = file.split("/")[0]
        assert not (data_dir / file).exists()
        assert (data_dir / "_set_aside" / label / Path(file).name).is_file()
        assert (data_dir / "cleaning_log.csv").is_file()
        click(browser, "Undo last apply")
        wait_for(lambda: "Moved 1 file(s) back" in message(), "the undo")
        assert {p: p.read_bytes() for p in data_dir.rglob("*.png")} == before
    except BaseException:
        browser.save_screenshot(str(browser.shots / "failed_01.png"))
        raise
