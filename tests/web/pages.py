#!/usr/bin/env python3
"""The storefront (/) and the operations page (/ops) in a real headless
browser (Debian's chromium and chromium-driver, through selenium).

Run against a `pygmy up` cluster (tests/web/run.sh starts one):

    python3 tests/web/pages.py --dir DATA_DIR --pygmy PATH/TO/pygmy [--shots docs/img]

Checks, as a person would see them:

1. Storefront: the books load, a topic filter and the title search narrow
   the list, a book shows its price and stock; a double click on "Buy"
   buys exactly one copy (the stock, read through the REST API, drops by
   one and the order page shows one order).
2. Operations page: both groups' views and four replicas up; catalog-2 is
   killed (SIGKILL) and the page shows it down, then it is restarted (the
   command line `pygmy up` uses) and the page shows it up again.

Screenshots of both pages (and of the replica down) go to --shots.
Exits non-zero, naming the check, on any failure.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def browser():
    options = Options()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


def storefront(driver, base, shots):
    wait = WebDriverWait(driver, 20)
    driver.get(base + "/")
    rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.book"))
    assert header_colour(driver) == "rgb(43, 74, 111)", "the shared stylesheet did not apply"
    books = get_json(base + "/books")["books"]
    assert len(rows) == len(books), f"{len(rows)} rows for {len(books)} books"

    # A topic narrows the list to its books.
    topic = sorted({b["topic"] for b in books})[0]
    driver.find_element(By.XPATH, f"//nav/button[text()='{topic}']").click()
    shown = driver.find_elements(By.CSS_SELECTOR, "tr.book")
    assert len(shown) == sum(b["topic"] == topic for b in books), "topic filter"
    driver.find_element(By.XPATH, "//nav/button[text()='all topics']").click()

    # The search narrows by title.
    word = books[0]["title"].split()[-1]
    box = driver.find_element(By.ID, "search")
    box.send_keys(word)
    shown = driver.find_elements(By.CSS_SELECTOR, "tr.book")
    want = [b for b in books if word.lower() in b["title"].lower()]
    assert len(shown) == len(want), f"search {word!r}: {len(shown)} rows, {len(want)} books"
    box.clear()
    box.send_keys(" ")  # an input event with an empty query: every book again
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.book")) == len(books))

    # A book in stock: its price and stock, then a double click on Buy.
    book = next(b for b in books if b["count"] > 0)
    driver.find_element(By.CSS_SELECTOR, f"tr.book[data-id='{book['id']}']").click()
    button = wait.until(ec.element_to_be_clickable((By.ID, "buy")))
    before = get_json(f"{base}/books/{book['id']}")["count"]
    stock_shown = int(driver.find_element(By.ID, "stock").text)
    assert stock_shown == before, f"page shows stock {stock_shown}, the store {before}"
    ActionChains(driver).double_click(button).perform()
    order_text = wait.until(ec.visibility_of_element_located((By.ID, "order-id"))).text
    order_id = int(order_text.lstrip("#"))
    order = get_json(f"{base}/orders/{order_id}")
    assert order["item_id"] == book["id"] and order["qty"] == 1, order
    # Let any second request finish, then count: one copy sold, not two.
    time.sleep(1.0)
    after = get_json(f"{base}/books/{book['id']}")["count"]
    assert after == before - 1, f"double click: stock {before} -> {after} (one buy expected)"
    wait.until(lambda d: d.find_element(By.ID, "stock").text == str(after))
    driver.save_screenshot(os.path.join(shots, "storefront.png"))
    print(f"storefront: {len(books)} books, filters work, double click bought once "
          f"(order {order_id}, stock {before} -> {after})")


def header_colour(driver):
    # The header's background comes from /pygmy.css with the page's own
    # colour variable: both must have loaded for it to be set.
    return driver.execute_script(
        "return getComputedStyle(document.querySelector('header')).backgroundColor;")


def health_of(driver, node):
    # One script call, so a live re-render of the table between finding the
    # cell and reading it cannot leave a stale element in our hands.
    return driver.execute_script(
        "const c = document.querySelector(arguments[0]);"
        " return c ? c.getAttribute('data-health') : null;",
        f"tr[data-node='{node}'] td[data-health]")


def ops(driver, base, data_dir, pygmy, shots):
    # The page re-renders its tables live: an element found one moment may
    # be replaced the next, so a poll that meets one just tries again.
    wait = WebDriverWait(driver, 30, poll_frequency=0.2,
                         ignored_exceptions=(StaleElementReferenceException,))
    driver.get(base + "/ops")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#views tr")) == 2)
    assert header_colour(driver) == "rgb(51, 51, 51)", "the shared stylesheet did not apply"
    replicas = ["catalog-1", "catalog-2", "order-1", "order-2"]
    wait.until(lambda d: all(health_of(d, n) == "up" for n in replicas))
    time.sleep(1.5)  # a heartbeat line or two, and a steady page
    driver.save_screenshot(os.path.join(shots, "ops.png"))
    print("ops: two views, four replicas up")

    victim = "catalog-2"
    with open(os.path.join(data_dir, f"{victim}.pid")) as f:
        pid = int(f.read().strip())
    os.kill(pid, signal.SIGKILL)
    wait.until(lambda d: health_of(d, victim) == "down")
    log = driver.find_element(By.ID, "log").text
    driver.save_screenshot(os.path.join(shots, "ops-replica-down.png"))
    print(f"ops: {victim} shown down after SIGKILL")

    config = os.path.join(data_dir, "pygmy.toml")
    with open(os.path.join(data_dir, f"{victim}.log"), "ab") as out:
        child = subprocess.Popen([pygmy, "node", "--config", config, "--name", victim],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 start_new_session=True)
    with open(os.path.join(data_dir, f"{victim}.pid"), "w") as f:
        f.write(f"{child.pid}\n")
    wait.until(lambda d: health_of(d, victim) == "up")
    log = driver.find_element(By.ID, "log").text
    assert victim in log, "the heartbeat log on the page names the replica"
    print(f"ops: {victim} shown up again after restart; heartbeat log lines shown")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True, help="the `pygmy up` data folder")
    p.add_argument("--pygmy", required=True, help="the pygmy binary (to restart a node)")
    p.add_argument("--shots", default="docs/img")
    args = p.parse_args()
    with open(os.path.join(args.dir, "pygmy.toml"), "rb") as f:
        cfg = tomllib.load(f)
    # `advertise` since listen and advertise addresses are apart; `addr` in
    # configurations written before. The first front end: `[[frontends]]`
    # since several can run, `[frontend]` in configurations written before.
    front = cfg["frontends"][0] if "frontends" in cfg else cfg["frontend"]
    base = "http://" + front.get("advertise", front.get("addr"))
    os.makedirs(args.shots, exist_ok=True)
    driver = browser()
    try:
        storefront(driver, base, args.shots)
        ops(driver, base, args.dir, args.pygmy, args.shots)
    finally:
        driver.quit()
    print("pages: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"pages: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
