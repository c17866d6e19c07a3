"""The three journeys in a real browser (Debian's Chromium driven by Playwright) against
`assistant serve`: gunicorn, a Celery worker, SmolLM2 in llama.cpp, a small real index.

One server for the module; screenshots of every page go to test-artifacts/browser/.
Slow (about 1-2 minutes on 2 cores): the server loads the real models once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from assistant.accounts.users import create_user
from assistant.services import Services
from assistant.settings import Settings
from tests.assistant.learning.learning_helpers import TINY_LEARNING, qa_items, seed_feedback
from tests.conftest import fixture_documents

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ADMIN = ("admin@example.org", "admin-password-1")
USER = ("asker@example.org", "asker-password-1")
REVIEWER = ("checker@example.org", "checker-password-1")
ANSWER_TIMEOUT_MS = 240_000  # SmolLM2 on 2 shared cores


@dataclass(frozen=True)
class Server:
    url: str
    data_dir: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_seed(folder: Path) -> None:
    """The shared test documents as JSONL, one folder per collection."""
    for document in fixture_documents():
        target = folder / document.collection / f"{document.collection}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "id": document.doc_id,
            "title": document.title,
            "text": document.text,
            "source_url": document.source_url,
        }
        with target.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")


def _cli(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "assistant.cli", *args],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )


def _health(url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url + "/api/health", timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except OSError:
        return None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: scripts/test.sh installs it (apt-get install chromium)")
    data_dir = tmp_path_factory.mktemp("browser-server")
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "ASSISTANT_DATA_DIR": str(data_dir),
        # torch: no ONNX export for a throwaway data folder.
        "ASSISTANT_RETRIEVAL__EMBEDDING_BACKEND": "torch",
        "ASSISTANT_WEB__ADMIN_EMAIL": ADMIN[0],
        "ASSISTANT_WEB__ADMIN_PASSWORD": ADMIN[1],
        "ASSISTANT_WEB__THREADS": "4",
        "ASSISTANT_WEB__HELD_POLL_SECONDS": "1",
        # Journey (b): an answer from weak sources is held until a reviewer approves it.
        "ASSISTANT_SAFETY__FLAG_RULES__LOW_RETRIEVAL_CONFIDENCE": "hold",
        # Short prompts and answers: the journeys test the product, not the model.
        "ASSISTANT_LLM__MAX_TOKENS": "64",
        "ASSISTANT_RETRIEVAL__TOP_K": "2",
        "ASSISTANT_LOG_LEVEL": "INFO",
        # Journey (c): a training run small enough for two shared cores.
        **{f"ASSISTANT_LEARNING__{k.upper()}": str(v) for k, v in TINY_LEARNING.items()},
    }
    seed = data_dir / "seed"
    _write_seed(seed)
    _cli(env, "ingest", str(seed))
    accounts = Services(Settings(data_dir=data_dir))
    for (email, password), role in ((USER, "user"), (REVIEWER, "reviewer")):
        create_user(accounts.db, email, password, role)
    # Reviewed answers waiting to become training data, as the review queue leaves them.
    seed_feedback(accounts.db, qa_items(4))
    accounts.close()
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "web.cli",  # the installed `assistant` command: serve belongs to the web
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-ingest",
            ],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the server, its gunicorn worker and the Celery worker
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            health = _health(url)
            loaded = health.get("loaded", {}) if health else {}
            if isinstance(loaded, dict) and loaded.get("llm") and loaded.get("scrubber"):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the server did not start:\n" + log.read_text()[-4000:])
            time.sleep(1)
        # `assistant serve` runs the production server, never Flask's development server.
        started = log.read_text(errors="replace")
        assert "Using worker: gthread" in started and "Debug mode" not in started, started[-2000:]
        yield Server(url, data_dir, log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _page_errors(page: object) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))  # type: ignore[attr-defined]
    page.on(  # type: ignore[attr-defined]
        "console", lambda m: errors.append(m.text) if m.type == "error" else None
    )
    return errors


def _sign_in(browser: object, server: Server, account: tuple[str, str], **context: object):  # type: ignore[no-untyped-def]
    ctx = browser.new_context(**context)  # type: ignore[attr-defined]
    page = ctx.new_page()
    errors = _page_errors(page)
    page.goto(server.url + "/login")
    page.fill("#email", account[0])
    page.fill("#password", account[1])
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/")
    return ctx, page, errors


def _ask(page, question: str, collection: str) -> object:  # type: ignore[no-untyped-def]
    """Ask with the keyboard only; returns the answer's list item once it is complete."""
    page.focus("#collection")
    page.select_option("#collection", collection)
    page.focus("#question")
    page.keyboard.type(question)
    page.keyboard.press("Enter")
    answer = page.locator(".message.assistant").last
    page.wait_for_function(
        "() => { const a = [...document.querySelectorAll('.message.assistant')].pop();"
        " return a && !a.classList.contains('streaming') && a.dataset.messageId; }",
        timeout=ANSWER_TIMEOUT_MS,
    )
    return answer


def test_a_user_asks_reads_the_cited_passage_and_corrects_the_answer(browser, server) -> None:  # type: ignore[no-untyped-def]
    anonymous = browser.new_context()
    login = anonymous.new_page()
    login.goto(server.url + "/login")
    _shot(login, "01-login")
    anonymous.close()

    ctx, page, errors = _sign_in(browser, server, USER)
    _shot(page, "02-chat-empty")
    # Record whether tokens were on the page before the answer was complete.
    page.evaluate(
        "() => { window.__streamed = false; new MutationObserver(() => {"
        " const a = document.querySelector('.message.assistant.streaming .message-body');"
        " if (a && a.textContent.trim().length > 0) window.__streamed = true;"
        " }).observe(document.getElementById('messages'),"
        " {subtree: true, childList: true, characterData: true}); }"
    )
    answer = _ask(page, "What are the symptoms of type 2 diabetes?", "medical")
    assert page.evaluate("window.__streamed"), "no token was shown before the answer completed"
    assert page.locator("#announcer").text_content() == "Answer ready."
    body = answer.locator(".message-body").inner_text()
    assert len(body.split()) >= 5, body
    # Model text becomes text nodes and a few Markdown elements, never markup of its own.
    tags = set(answer.locator(".message-body *").evaluate_all("els => els.map(e => e.tagName)"))
    assert tags <= {"P", "BUTTON", "STRONG", "EM", "CODE", "UL", "OL", "LI"}, tags
    assert page.url.startswith(server.url + "/c/")

    # The first source opens the side panel with the passage highlighted in its context.
    source = answer.locator(".sources .citation").first
    title = source.inner_text()
    source.focus()
    page.keyboard.press("Enter")
    panel = page.locator("#citation-panel")
    mark = panel.locator("mark")
    mark.wait_for(timeout=15_000)
    assert panel.is_visible()
    assert len(mark.inner_text().split()) >= 5
    quote = panel.locator("blockquote.passage").inner_text()
    assert mark.inner_text() in quote and len(quote) > len(mark.inner_text())
    assert page.locator("#panel-title").inner_text() in title
    assert panel.locator("a.source-link").get_attribute("href").startswith("https://")
    _shot(page, "03-chat-answer-with-source-panel")
    page.keyboard.press("Escape")
    assert not panel.is_visible()

    # Thumbs down with a written correction and a reason.
    answer.get_by_role("button", name="Not helpful").click()
    answer.locator("textarea").fill("Type 2 diabetes often has no symptoms at first [1].")
    answer.locator(".feedback-form input[type=text]").fill("It left out the early signs.")
    _shot(page, "04-chat-correction-form")
    answer.get_by_role("button", name="Send feedback").click()
    status = answer.locator(".feedback-status")
    status.filter(has_text="Thank you").wait_for(timeout=10_000)
    assert answer.get_by_role("button", name="Not helpful").get_attribute("aria-pressed") == "true"

    # The conversation is listed and resumes after a reload, the rating kept.
    page.reload()
    resumed = page.locator(".message.assistant").last
    assert resumed.locator(".message-body").inner_text().strip() == body.strip()
    assert resumed.get_by_role("button", name="Not helpful").get_attribute("aria-pressed") == "true"
    assert page.locator("#conversation-list a[aria-current=page]").count() == 1

    # Readable at phone width: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    _shot(page, "05-chat-phone")
    assert width <= 390, width
    assert errors == [], errors
    ctx.close()


def test_a_reviewer_approves_a_held_answer_and_the_user_sees_it(browser, server) -> None:  # type: ignore[no-untyped-def]
    user_ctx, user_page, user_errors = _sign_in(browser, server, USER)
    # A medical question searched in the legal collection: weak sources, so it is held.
    answer = _ask(user_page, "How is asthma treated in children?", "legal")
    held = answer.locator(".notice-held")
    assert held.is_visible(), answer.inner_text()
    assert answer.locator(".message-body").inner_text().strip() == ""
    assert answer.locator(".feedback").count() == 0
    _shot(user_page, "06-chat-held")

    rev_ctx, review, rev_errors = _sign_in(browser, server, REVIEWER)
    review.goto(server.url + "/review")
    item = review.locator("article.review-item").filter(has_text="low_retrieval_confidence").last
    assert item.locator(".chip-held").is_visible()
    assert "asthma" in item.locator(".text-block").first.inner_text().lower()
    assert item.locator(".review-answer").inner_text().strip() not in ("", "(empty)")
    _shot(review, "07-review-queue")
    # The filter by reason keeps this item and names the count.
    review.select_option("#filter-reason", "low_retrieval_confidence")
    review.get_by_role("button", name="Filter").click()
    review.wait_for_url("**/review?reason=low_retrieval_confidence*")
    item = review.locator("article.review-item").filter(has_text="asthma").last
    item.get_by_role("button", name="Approve").click()
    review.locator(".flash").filter(has_text="approved").wait_for(timeout=10_000)
    _shot(review, "08-review-approved")

    # The user's open page shows the answer without a reload.
    answer.locator(".notice-reviewed").wait_for(timeout=15_000)
    assert answer.locator(".notice-held").count() == 0
    assert len(answer.locator(".message-body").inner_text().split()) >= 3
    assert answer.get_by_role("button", name="Helpful", exact=True).is_visible()
    _shot(user_page, "09-chat-approved")
    assert user_errors == [] and rev_errors == [], (user_errors, rev_errors)
    user_ctx.close()
    rev_ctx.close()


def test_an_admin_uploads_a_file_and_watches_the_reindex_job(browser, server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ctx, page, errors = _sign_in(browser, server, ADMIN)
    page.goto(server.url + "/admin")
    assert page.locator(".subnav a[href='/admin/training']").count() == 1
    _shot(page, "10-admin-overview")
    page.get_by_role("link", name="Corpus").click()
    upload = tmp_path / "frostbite-care.md"
    upload.write_text(
        "# Frostbite care\n\nFrostbite is an injury caused by freezing of the skin and the "
        "tissues below it. Warm the area slowly in warm, not hot, water for 20 to 30 minutes. "
        "Do not rub the skin. Seek medical care for blisters or numbness that lasts.\n",
        encoding="utf-8",
    )
    page.select_option("#upload-collection", "medical")
    page.set_input_files("#upload-files", str(upload))
    page.get_by_role("button", name="Upload and index").click()
    page.wait_for_url("**/admin/corpus#jobs")
    row = page.locator("#jobs tbody tr").first
    assert row.locator("td").nth(1).inner_text() == "ingest"
    first_state = row.get_attribute("data-state")
    _shot(page, "11-admin-job-started")
    url_before = page.url
    # The row changes on this page as the worker goes: no reload.
    row.and_(page.locator("tr[data-state=succeeded]")).wait_for(timeout=90_000)
    assert page.url == url_before
    assert first_state in ("queued", "running", "succeeded")
    assert row.locator(".job-percent").inner_text() == "100%"
    assert row.locator("progress").evaluate("p => p.value") == 1
    _shot(page, "12-admin-job-done")

    page.goto(server.url + "/admin/corpus?q=frostbite")
    page.get_by_role("link", name="Frostbite care").click()
    chunks = page.locator("ol.chunks li")
    assert chunks.count() >= 1
    assert "Warm the area slowly" in chunks.first.inner_text()
    _shot(page, "13-admin-document-chunks")

    for path, name in (
        ("/admin/quality", "14-admin-quality"),
        ("/admin/users", "15-admin-users"),
        ("/admin/audit", "16-admin-audit"),
    ):
        page.goto(server.url + path)
        _shot(page, name)
    page.goto(server.url + "/admin/quality")
    assert page.locator("svg.chart-svg").count() >= 2
    page.goto(server.url + "/admin/audit")
    actions = page.locator("#audit code").all_inner_texts()
    assert "corpus.upload" in actions and "review.approve" in actions, actions
    assert errors == [], errors
    ctx.close()


def test_an_admin_trains_watches_the_run_and_sees_the_comparison(browser, server) -> None:  # type: ignore[no-untyped-def]
    ctx, page, errors = _sign_in(browser, server, ADMIN)
    page.goto(server.url + "/admin/training")
    assert page.get_by_role("button", name="Train, evaluate and gate").is_disabled()
    _shot(page, "17-admin-training-empty")

    # Reviewed feedback becomes a dataset; the page shows it when the worker is done.
    page.get_by_role("button", name="Build a dataset from reviewed feedback").click()
    page.locator(".flash").filter(has_text="Dataset job").wait_for(timeout=10_000)
    page.locator("#datasets tbody tr").first.wait_for(timeout=180_000)
    assert page.locator("#datasets tbody tr").count() == 1
    assert page.locator("#datasets a", has_text="alpaca").count() == 1

    # A tiny run: a few steps of LoRA, then export, the gate and its comparison.
    page.fill("input[name=epochs]", "1")
    page.fill("input[name=max_steps]", "3")
    page.select_option("select[name=quantization]", "q8_0")
    page.get_by_role("button", name="Train, evaluate and gate").click()
    page.locator(".flash").filter(has_text="Training job").wait_for(timeout=10_000)
    row = page.locator("#training-runs tr[data-kind=training]").first
    assert row.get_attribute("data-state") in ("queued", "running")
    # Progress moves on this page while the worker trains, without a reload.
    page.wait_for_function(
        "() => { const r = document.querySelector('#training-runs tr[data-kind=training]');"
        " return r && r.dataset.state === 'running' && r.querySelector('progress').value > 0.01"
        " && r.querySelector('progress').value < 1; }",
        timeout=300_000,
    )
    assert row.locator(".job-message").inner_text().strip() != ""
    _shot(page, "18-admin-training-running")

    # When the run ends the page reloads with the candidate compared against the active model.
    comparison = page.locator("#comparison tbody tr")
    comparison.first.wait_for(timeout=600_000)
    finished = page.locator("#training-runs tr[data-kind=training]").first
    assert finished.get_attribute("data-state") == "succeeded", finished.inner_text()
    assert finished.locator(".job-percent").inner_text() == "100%"
    measures = comparison.all_inner_texts()
    assert any("loss" in m.lower() for m in measures), measures
    numbers = page.locator("#comparison td.num").all_inner_texts()
    assert sum(n != "n/a" for n in numbers) >= 4, numbers
    versions = page.locator("#versions tbody tr")
    # The base, the shipped grounded model and the candidate, promoted or not.
    assert versions.count() == 3, versions.all_inner_texts()
    curve = page.locator("#loss-curve")
    assert curve.evaluate("img => img.complete && img.naturalWidth > 0")
    _shot(page, "19-admin-training-comparison")
    assert errors == [], errors
    ctx.close()
