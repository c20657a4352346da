#!/usr/bin/env python3
"""Drives the jobs panel in headless Chromium: start a fine-tuning job, follow it to the end over
Server-Sent Events, see the new version become the default, then roll back to version 1.

Usage: jobs_page.py BASE_URL ADMIN_TOKEN TRAINING_DATA NEW_VERSION
"""
import sys

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

base, token, data, new_version = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
options = Options()
options.binary_location = "/usr/bin/chromium"
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def default_version(d):
    # The table is re-rendered while we read it; a stale row just means "look again".
    try:
        for row in d.find_elements(By.CSS_SELECTOR, "#versions tbody tr"):
            if row.find_element(By.CSS_SELECTOR, ".is-default").text == "yes":
                return row.get_attribute("data-version")
    except StaleElementReferenceException:
        pass
    return None


def click_make_default(d, version):
    try:
        d.find_element(By.CSS_SELECTOR, f'#versions tbody tr[data-version="{version}"] button.make-default').click()
        return True
    except (StaleElementReferenceException, NoSuchElementException):
        return False


try:
    driver.get(base + "/")
    wait = WebDriverWait(driver, 60)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) > 0)
    token_box = driver.find_element(By.ID, "token")
    token_box.send_keys(token)
    driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", token_box)
    wait.until(lambda d: default_version(d) == "1")
    driver.find_element(By.ID, "training-data").send_keys(data)
    for field, value in (("job-timesteps", "2"), ("job-epochs", "1"), ("job-limit", "60")):
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    driver.find_element(By.ID, "job-force").click()
    driver.find_element(By.ID, "start-job").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "job-status"), "succeeded"))
    events = driver.find_elements(By.CSS_SELECTOR, "#job-events li")
    assert any("[metrics]" in e.text for e in events), "no metrics events streamed"
    wait.until(lambda d: default_version(d) == new_version)
    # Roll back to version 1 from the versions table.
    wait.until(lambda d: click_make_default(d, "1"))
    wait.until(lambda d: default_version(d) == "1")
    print(f"job streamed {len(events)} events; deployed version {new_version}; rolled back to 1")
finally:
    driver.quit()
