#!/usr/bin/env python3
"""Drives the web page in headless Chromium: pick an image, classify, read the prediction.

Usage: classify_page.py BASE_URL IMAGE_PATH EXPECTED_MODEL
Exits 0 when the page showed a prediction, with spike rates and a drawn trace; prints what it saw.
"""
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

base, image, model = sys.argv[1], sys.argv[2], sys.argv[3]
options = Options()
options.binary_location = "/usr/bin/chromium"
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    driver.get(base + "/")
    wait = WebDriverWait(driver, 20)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) > 0)
    options_text = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#model option")]
    assert model in options_text, f"model {model} not offered: {options_text}"
    wait.until(ec.text_to_be_present_in_element((By.ID, "ready"), "ready"))
    driver.find_element(By.ID, "file").send_keys(image)
    steps = driver.find_element(By.ID, "timesteps")
    steps.clear()
    steps.send_keys("6")
    wait.until(ec.element_to_be_clickable((By.ID, "classify"))).click()
    wait.until(lambda d: d.find_element(By.ID, "prediction").text.strip() != "")
    prediction = driver.find_element(By.ID, "prediction").text
    bars = driver.find_elements(By.CSS_SELECTOR, "#bars .bar")
    rates = driver.find_elements(By.CSS_SELECTOR, "#rates .bar")
    meta = driver.find_element(By.ID, "meta").text
    # The trace canvas has non-blank pixels once drawn.
    drawn = driver.execute_script(
        "const c = document.getElementById('trace'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "for (let i = 3; i < d.length; i += 4) { if (d[i] !== 0) return true; } return false;")
    assert bars, "no score bars"
    assert rates, "no spike rates"
    assert drawn, "trace chart not drawn"
    assert "T=6" in meta, f"budget not applied: {meta}"
    print(f"prediction={prediction} bars={len(bars)} layers={len(rates)} meta={meta}")
finally:
    driver.quit()
