"""The site in a real browser (Debian's Chromium) against the real function, cross-origin as deployed.

Digits, letters and words are drawn stroke by stroke with the mouse and with
touch; images are imported through the file input; the function is also
pointed at a port with nothing listening. Screenshots of the desktop and
phone layouts go to tests/artifacts/.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
import os
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from conftest import ARTIFACTS, MODELS_DIR
from infra.run_local import free_port, function_command, start_site, wait_healthy

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"viewport": {"width": 1280, "height": 860}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "has_touch": True, "is_mobile": True}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")

# Handwriting as strokes of key points in a unit box (x right, y down), smoothed into curves when drawn.
DIGITS = {
    "0": [
        [
            (0.5, 0.0),
            (0.18, 0.12),
            (0.05, 0.5),
            (0.18, 0.88),
            (0.5, 1.0),
            (0.82, 0.88),
            (0.95, 0.5),
            (0.82, 0.12),
            (0.5, 0.0),
            (0.4, 0.04),
        ]
    ],
    "1": [[(0.58, 0.0), (0.54, 0.35), (0.5, 0.7), (0.46, 1.0)]],
    "2": [
        [
            (0.12, 0.22),
            (0.3, 0.03),
            (0.6, 0.0),
            (0.85, 0.18),
            (0.8, 0.42),
            (0.45, 0.72),
            (0.1, 0.98),
            (0.5, 0.96),
            (0.92, 0.97),
        ]
    ],
    "3": [
        [
            (0.15, 0.1),
            (0.5, 0.0),
            (0.82, 0.12),
            (0.8, 0.33),
            (0.42, 0.48),
            (0.85, 0.62),
            (0.88, 0.85),
            (0.52, 1.0),
            (0.12, 0.9),
        ]
    ],
    "4": [
        [(0.55, 0.0), (0.32, 0.35), (0.08, 0.66), (0.5, 0.66), (0.95, 0.64)],
        [(0.7, 0.3), (0.69, 0.65), (0.68, 1.0)],
    ],
    "5": [
        [(0.85, 0.02), (0.5, 0.02), (0.2, 0.02)],
        [(0.2, 0.02), (0.16, 0.45), (0.5, 0.38), (0.85, 0.55), (0.86, 0.8), (0.5, 1.0), (0.1, 0.9)],
    ],
    "6": [
        [
            (0.75, 0.0),
            (0.42, 0.22),
            (0.18, 0.58),
            (0.2, 0.86),
            (0.48, 1.0),
            (0.78, 0.9),
            (0.82, 0.68),
            (0.55, 0.54),
            (0.22, 0.66),
        ]
    ],
    "7": [[(0.08, 0.03), (0.5, 0.02), (0.92, 0.02), (0.65, 0.5), (0.42, 1.0)]],
    "8": [
        [
            (0.76, 0.14),
            (0.5, 0.0),
            (0.24, 0.14),
            (0.3, 0.34),
            (0.5, 0.47),
            (0.76, 0.64),
            (0.76, 0.88),
            (0.5, 1.0),
            (0.24, 0.88),
            (0.24, 0.64),
            (0.5, 0.47),
            (0.7, 0.34),
            (0.76, 0.14),
        ]
    ],
    "9": [
        [
            (0.8, 0.18),
            (0.5, 0.0),
            (0.2, 0.14),
            (0.22, 0.38),
            (0.5, 0.48),
            (0.8, 0.34),
            (0.8, 0.18),
            (0.77, 0.6),
            (0.72, 1.0),
        ]
    ],
}
LETTERS = {
    "A": [[(0.05, 1.0), (0.28, 0.5), (0.5, 0.0), (0.72, 0.5), (0.95, 1.0)], [(0.25, 0.62), (0.75, 0.62)]],
    "H": [[(0.12, 0.0), (0.12, 1.0)], [(0.88, 0.0), (0.88, 1.0)], [(0.12, 0.5), (0.88, 0.5)]],
    "E": [[(0.85, 0.0), (0.15, 0.0), (0.15, 0.5), (0.15, 1.0), (0.88, 1.0)], [(0.15, 0.5), (0.75, 0.5)]],
    "X": [[(0.1, 0.0), (0.5, 0.5), (0.9, 1.0)], [(0.9, 0.0), (0.5, 0.5), (0.1, 1.0)]],
}

INK_PIXELS = """() => {
  const canvas = document.getElementById("pad");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let ink = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] < 128 && data[i + 2] < 128) ink += 1;
  return ink;
}"""

BOX_PIXELS = INK_PIXELS.replace("data[i] < 128 && data[i + 2] < 128", "data[i] > 150 && data[i + 2] < 60")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The function (functions-framework) and the static site on two free ports: {"url": site, "api": function}."""
    port, site_port = free_port(), free_port()
    api_url, site_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{site_port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = tmp_path_factory.mktemp("function") / "function.log"
    env = {**os.environ, "MODELS_DIR": str(MODELS_DIR), "ALLOWED_ORIGINS": site_url}
    with log.open("wb") as output:
        function = subprocess.Popen(function_command(port), env=env, stdout=output, stderr=subprocess.STDOUT)
    server = None
    try:
        assert wait_healthy(api_url, function, seconds=60), f"the function did not start:\n{log.read_text()[-3000:]}"
        server = start_site(site_port, api_url)
        with urllib.request.urlopen(site_url + "/config.js", timeout=5) as response:
            assert api_url in response.read().decode()
        yield {"url": site_url, "api": api_url}
    finally:
        if server:
            server.shutdown()
            server.server_close()
        function.terminate()
        function.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, url: str, **options):
    """A fresh page on the site and the list its console errors and page errors are collected in."""
    context = browser.new_context(**options)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_function("document.getElementById('result').dataset.state === 'idle'")
    return page, errors


# --- drawing -----------------------------------------------------------------------------------------------------


def smooth(points: list[tuple[float, float]], step: float) -> list[tuple[float, float]]:
    """Catmull-Rom curve through the key points, sampled about every `step` (same units as the points)."""
    if len(points) == 1:
        return list(points)
    padded = [points[0], *points, points[-1]]
    out = [points[0]]
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = (np.array(p) for p in padded[i - 1 : i + 3])
        n = max(1, math.ceil(np.linalg.norm(p2 - p1) / step))
        for t in np.linspace(0, 1, n + 1)[1:]:
            point = 0.5 * (
                2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
            out.append((float(point[0]), float(point[1])))
    return out


def layout(glyphs: list[list], box: dict, height_share: float = 0.6) -> list[list[tuple[float, float]]]:
    """Glyphs side by side, centred in the canvas box, as smooth strokes in page coordinates."""
    height = box["height"] * height_share
    width = height * 0.7
    gap = height * 0.35
    total = len(glyphs) * width + (len(glyphs) - 1) * gap
    scale = min(1.0, box["width"] * 0.9 / total)
    height, width, gap, total = height * scale, width * scale, gap * scale, total * scale
    left = box["x"] + (box["width"] - total) / 2
    top = box["y"] + (box["height"] - height) / 2
    strokes = []
    for i, glyph in enumerate(glyphs):
        x0 = left + i * (width + gap)
        for stroke in glyph:
            curve = smooth([(x * width, y * height) for x, y in stroke], step=6)
            strokes.append([(x0 + x, top + y) for x, y in curve])
    return strokes


def draw_with_mouse(page, strokes) -> None:
    for stroke in strokes:
        page.mouse.move(*stroke[0])
        page.mouse.down()
        for point in stroke[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def draw_with_touch(page, strokes) -> None:
    cdp = page.context.new_cdp_session(page)
    for stroke in strokes:
        x, y = stroke[0]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        for x, y in stroke[1:]:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def pad_box(page) -> dict:
    return page.locator("#pad").bounding_box()


def wait_for_answer(page) -> str:
    """The answer shown once the prediction in flight ends, or 'error: <message>'."""
    page.wait_for_function("['done', 'error'].includes(document.getElementById('result').dataset.state)")
    if page.get_attribute("#result", "data-state") == "error":
        return "error: " + page.inner_text("#error")
    return page.inner_text("#answer")


def choose(page, mode: str) -> None:
    page.check(f'input[name="mode"][value="{mode}"]')


# --- tests -------------------------------------------------------------------------------------------------------


def test_digits_drawn_with_the_mouse(site, browser):
    page, errors = open_page(browser, site["url"], **DESKTOP)
    answers = {}
    for digit, glyph in DIGITS.items():
        page.keyboard.press("Escape")
        draw_with_mouse(page, layout([glyph], pad_box(page)))
        page.keyboard.press("Enter")  # the pad has the focus after drawing
        answers[digit] = wait_for_answer(page)
    page.screenshot(path=str(ARTIFACTS / "site-desktop.png"), full_page=True)
    right = sum(answer == digit for digit, answer in answers.items())
    print(f"mouse: {right}/10 right: {answers}")
    assert right >= 9, answers
    assert page.locator("#top li").count() == 5
    assert page.locator("#model-input").evaluate("img => img.naturalWidth") == 28
    assert errors == []
    page.context.close()


def test_digits_drawn_by_touch_on_a_phone(site, browser):
    page, errors = open_page(browser, site["url"], **PHONE)
    page.evaluate(
        """() => { window.seenPointers = new Set();
        document.getElementById("pad").addEventListener("pointerdown", e => window.seenPointers.add(e.pointerType)); }"""
    )
    answers = {}
    for digit, glyph in DIGITS.items():
        page.locator("#clear").tap()
        page.evaluate("window.scrollTo(0, 0)")
        draw_with_touch(page, layout([glyph], pad_box(page)))
        assert page.evaluate("window.scrollY") == 0, "the page scrolled while drawing"
        page.wait_for_timeout(
            400
        )  # a finger takes a moment to reach the button; Chromium drops a tap right after a drag
        page.locator("#predict").tap()
        answers[digit] = wait_for_answer(page)
    assert page.evaluate("[...window.seenPointers]") == ["touch"]
    page.screenshot(path=str(ARTIFACTS / "site-phone.png"), full_page=True)
    right = sum(answer == digit for digit, answer in answers.items())
    print(f"touch: {right}/10 right: {answers}")
    assert right >= 9, answers
    assert errors == []
    page.context.close()


def test_a_letter_and_a_word(site, browser):
    page, errors = open_page(browser, site["url"], **DESKTOP)
    choose(page, "character")
    draw_with_mouse(page, layout([LETTERS["A"]], pad_box(page)))
    page.click("#predict")
    assert wait_for_answer(page) == "A"

    choose(page, "text")
    page.click("#clear")
    draw_with_mouse(page, layout([LETTERS[c] for c in "HEX"], pad_box(page), height_share=0.4))
    page.click("#predict")
    assert wait_for_answer(page) == "HEX"
    assert page.locator("#characters li").count() == 3
    assert page.evaluate(BOX_PIXELS) > 0, "the character boxes are not drawn over the writing"
    assert page.locator("#model-input").evaluate("img => [img.naturalWidth, img.naturalHeight]") == [84, 28]

    choose(page, "number")
    page.click("#clear")
    draw_with_mouse(page, layout([DIGITS["4"], DIGITS["2"]], pad_box(page), height_share=0.45))
    page.click("#predict")
    assert wait_for_answer(page) == "42"
    assert errors == []
    page.context.close()


def digit_image(digit: str, size: int, ink: int = 20) -> Image.Image:
    """A digit drawn as thick dark strokes on a white square."""
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    height, width = size * 0.6, size * 0.42
    left, top = (size - width) / 2, (size - height) / 2
    radius = size * 0.03
    for stroke in DIGITS[digit]:
        for x, y in smooth([(left + x * width, top + y * height) for x, y in stroke], step=1):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=ink)  # a round pen
    return image


def photo_of(digit: str) -> Image.Image:
    """A phone-photo-like JPEG: uneven light gray paper, grain, a slight rotation."""
    rng = np.random.default_rng(7)
    drawing = digit_image(digit, 480, ink=0).rotate(6, resample=Image.Resampling.BILINEAR, fillcolor=255)
    ink = 1 - np.asarray(drawing, np.float32) / 255
    yy, xx = np.mgrid[0:480, 0:480] / 480
    paper = 0.72 + 0.16 * xx - 0.08 * yy
    photo = paper * (1 - 0.7 * ink) + rng.normal(0, 0.03, ink.shape)
    gray = np.clip(photo * 255, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([gray, gray, (gray * 0.93).astype(np.uint8)], axis=-1))


def test_imported_png_and_jpeg_photo(site, browser, tmp_path):
    png, jpeg = tmp_path / "three.png", tmp_path / "photo.jpg"
    digit_image("3", 300).save(png)
    photo_of("4").save(jpeg, quality=80)
    page, errors = open_page(browser, site["url"], **DESKTOP)
    page.set_input_files("#file", str(png))
    assert wait_for_answer(page) == "3"
    assert page.evaluate(INK_PIXELS) > 0, "the imported image is not shown"
    page.keyboard.press("Escape")  # back to idle, so the next answer is the JPEG's
    page.set_input_files("#file", str(jpeg))
    assert wait_for_answer(page) == "4"
    assert errors == []
    page.context.close()


DROP_AND_PASTE = """([kind, base64]) => {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], "digit.png", { type: "image/png" }));
  const event = kind === "drop"
    ? new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true })
    : new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true });
  document.getElementById(kind === "drop" ? "pad" : "predict").dispatchEvent(event);
}"""


def test_drop_paste_and_recognise_as_you_draw(site, browser):
    buffer = io.BytesIO()
    digit_image("7", 200).save(buffer, format="PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    page, errors = open_page(browser, site["url"], **DESKTOP)
    page.evaluate(DROP_AND_PASTE, ["drop", png])
    assert wait_for_answer(page) == "7"
    page.keyboard.press("Escape")
    page.evaluate(DROP_AND_PASTE, ["paste", png])
    assert wait_for_answer(page) == "7"

    page.keyboard.press("Escape")
    page.check("#live")
    draw_with_mouse(page, layout([DIGITS["1"]], pad_box(page)))
    assert wait_for_answer(page) == "1"  # no button pressed
    assert errors == []
    page.context.close()


def test_turning_the_phone_keeps_the_drawing_on_the_pad(site, browser):
    page, errors = open_page(browser, site["url"], **PHONE)
    portrait = pad_box(page)
    draw_with_touch(page, layout([DIGITS["7"]], portrait))
    page.set_viewport_size({"width": 844, "height": 390})  # landscape: the pad gets wider, not taller
    page.wait_for_function(f"document.getElementById('pad').getBoundingClientRect().width > {portrait['width']}")
    with page.expect_request(f"{site['api']}/predict") as sent:
        page.click("#predict")  # not tap(): Chromium may drop a tap that comes right after a touch drag
    body = sent.value.post_data_json
    points = np.concatenate([np.array(stroke) for stroke in body["strokes"]])
    assert (points >= 0).all() and (points[:, 0] <= body["width"]).all() and (points[:, 1] <= body["height"]).all()
    assert wait_for_answer(page) == "7"
    assert errors == []
    page.context.close()


def test_switching_mode_drops_the_answer_in_flight(site, browser):
    page, errors = open_page(browser, site["url"], **DESKTOP)
    held = []
    page.route(
        f"{site['api']}/predict", lambda route: held.append(route)
    )  # hold the request until the mode has changed
    draw_with_mouse(page, layout([DIGITS["7"]], pad_box(page)))
    page.click("#predict")
    page.wait_for_function("document.getElementById('result').dataset.state === 'busy'")
    choose(page, "text")
    assert len(held) == 1
    with contextlib.suppress(PlaywrightError):  # raised where the page has already cancelled the request
        held[0].continue_()  # the real answer for digit mode, arriving late
    page.wait_for_timeout(1000)
    assert page.get_attribute("#result", "data-state") == "idle"
    assert page.inner_text("#prompt") == "Press Predict to read the drawing as text."
    assert errors == []
    page.context.close()


def test_the_service_rejects_an_image_with_no_ink(site, browser, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    page, _ = open_page(browser, site["url"], **DESKTOP)
    page.set_input_files("#file", str(blank))
    assert wait_for_answer(page) == "error: No ink was found in the image; draw or photograph a character."
    page.context.close()


def test_nothing_drawn_is_caught_before_sending(site, browser):
    page, errors = open_page(browser, site["url"], **DESKTOP)
    sent = []
    page.on("request", lambda request: sent.append(request.url) if "/predict" in request.url else None)
    page.click("#predict")
    assert wait_for_answer(page).startswith("error: Nothing to recognise yet")
    assert sent == []
    assert errors == []
    page.context.close()


def test_an_unreachable_service_is_reported(site, browser):
    dead = f"http://127.0.0.1:{free_port()}"
    context = browser.new_context(**DESKTOP)
    context.route(
        "**/config.js",
        lambda route: route.fulfill(
            content_type="text/javascript", body=f'window.HANDWRITING_CONFIG = {{ apiUrl: "{dead}" }};'
        ),
    )
    page = context.new_page()
    page.goto(site["url"])
    draw_with_mouse(page, layout([DIGITS["7"]], pad_box(page)))
    page.click("#predict")
    page.wait_for_function("document.getElementById('result').dataset.state === 'error'", timeout=12_000)
    assert f"Cannot reach the recognition service at {dead}" in page.inner_text("#error")
    assert page.get_attribute("#error", "role") == "alert"
    context.close()


def test_a_service_that_does_not_answer_times_out(site, browser):
    context = browser.new_context(**DESKTOP)
    context.route(f"{site['api']}/predict", lambda route: None)  # never answered
    page = context.new_page()
    page.clock.install()
    page.goto(site["url"])
    draw_with_mouse(page, layout([DIGITS["7"]], pad_box(page)))
    page.click("#predict")
    assert page.get_attribute("#result", "data-state") == "busy"
    page.clock.fast_forward(11_000)
    page.wait_for_function("document.getElementById('result').dataset.state === 'error'")
    assert f"The recognition service at {site['api']} did not answer within 10 s" in page.inner_text("#error")
    context.close()


def test_undo_clear_and_pen_width(site, browser):
    page, errors = open_page(browser, site["url"], **DESKTOP)
    box = pad_box(page)
    first = [[(box["x"] + 100 + i * 4, box["y"] + 100) for i in range(40)]]
    second = [[(box["x"] + 100, box["y"] + 200 + i * 2) for i in range(40)]]
    page.focus("#pen-width")
    page.keyboard.press("Home")  # thinnest pen
    draw_with_mouse(page, first)
    thin = page.evaluate(INK_PIXELS)
    draw_with_mouse(page, second)
    both = page.evaluate(INK_PIXELS)
    assert 0 < thin < both
    page.click("#undo")
    assert page.evaluate(INK_PIXELS) == thin
    page.keyboard.press("Control+z")
    assert page.evaluate(INK_PIXELS) == 0
    page.focus("#pen-width")
    page.keyboard.press("End")  # thickest pen
    draw_with_mouse(page, first)
    assert page.evaluate(INK_PIXELS) > 5 * thin
    page.click("#clear")
    assert page.evaluate(INK_PIXELS) == 0
    draw_with_mouse(page, second)
    page.keyboard.press("Delete")
    assert page.evaluate(INK_PIXELS) == 0
    assert errors == []
    page.context.close()
