// The web UI in a real browser (Debian's chromium via playwright-core) against the running service
// and real Envoy: edit gray rules with forms, preview, publish, see Envoy route, roll back, see counters.
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { setupBrowser } from "../../scripts/setup-tools.ts";
import { e2e, eventually, startControlRig, stopControlRig, versionOf, type ControlRig, type Envoy } from "./harness.ts";

const TOKEN = "ui-test-token";

describe("web UI", () => {
  let rig: ControlRig;
  let envoy: Envoy;
  let browser: Browser;
  let page: Page;
  let url: string;

  before(async () => {
    rig = await startControlRig(TOKEN);
    envoy = rig.envoy;
    url = `${rig.controlUrl}/`;
    browser = await chromium.launch({ executablePath: setupBrowser(), args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(url);
  });

  after(async () => {
    await browser?.close();
    await stopControlRig(rig);
  });

  const message = () => page.locator("#message").textContent();

  e2e("shows the current rules as forms, and refuses to publish before sign-in", async () => {
    await page.locator(".rule .r-name").first().waitFor();
    assert.equal(await page.locator(".rule .r-name").first().inputValue(), "beta-header");
    assert.equal(await page.locator(".rule .c-name").first().inputValue(), "x-user-group");
    await page.click("#save-rules");
    await page.waitForFunction(() => document.querySelector("#message")?.textContent?.includes("Sign in"));
  });

  e2e("adds a percentage rule with forms, previews it, publishes it, and Envoy routes by it", async () => {
    await page.fill("#token", TOKEN);
    await page.click("#login button");
    await page.click("#add-rule");
    const rule = page.locator(".rule").last();
    await rule.locator(".r-name").fill("all-users");
    await rule.locator(".r-target").fill("canary");
    const cond = rule.locator(".condition").first();
    await cond.locator(".c-kind").selectOption("percentage");
    await cond.locator(".c-percent-num").fill("100");
    await cond.locator(".c-name").fill("x-user-id");
    assert.equal(await cond.locator(".split-bar").evaluate((e) => (e as HTMLElement).style.width), "100%");

    await page.fill("#pv-headers", "x-user-id: u-1");
    await page.click("#preview");
    await page.waitForFunction(() => document.querySelector("#pv-result")?.textContent?.includes("canary"));
    assert.equal(await page.locator("#pv-result").textContent(), '→ canary (rule "all-users")');

    await page.click("#save-rules");
    await page.waitForFunction(() => document.querySelector("#message")?.textContent?.includes("Published version 2"));
    await eventually(async () => (await versionOf(envoy.url("/"), { headers: { "x-user-id": "u-1" } })) === "canary", 3000, "Envoy routes by the new rule");
    // The salt was fixed when the rule was saved, and the form shows it, editable.
    assert.equal(await page.locator(".rule").last().locator(".c-salt").inputValue(), "all-users");
    await page.screenshot({ path: join(tmpdir(), "graywall-ui-rules.png"), fullPage: true });
  });

  e2e("a field error is shown on the rule and nothing is published", async () => {
    const rule = page.locator(".rule").last();
    await rule.locator(".r-target").fill("Not A Target");
    await page.click("#save-rules");
    await page.waitForFunction(() => document.querySelector("#message")?.className === "error");
    assert.match((await message()) ?? "", /rules\[1\]\.target: must be 1-64 characters/);
    assert.ok(await rule.evaluate((e) => e.classList.contains("invalid")));
    assert.equal((await (await fetch(`${url}api/filters/gray_router`)).json()).version, 2);
    await page.click("#reload-rules");
  });

  e2e("history shows who changed what, and restores an earlier version", async () => {
    await page.click('nav button[data-tab="history"]');
    await page.locator("#history tbody tr").nth(1).waitFor();
    const first = await page.locator("#history tbody tr").first().textContent();
    assert.match(first ?? "", /^2.*web UI.*rules\[1\]/);
    await page.click('button:has-text("Restore version 1")');
    await page.waitForFunction(() => document.querySelector("#message")?.textContent?.includes("Restored version 1 as version 3"));
    await eventually(async () => (await versionOf(envoy.url("/"), { headers: { "x-user-id": "u-1" } })) === "stable", 3000, "rolled back in Envoy");
  });

  e2e("live counters from Envoy's admin", async () => {
    await page.click('nav button[data-tab="counters"]');
    await page.waitForFunction(() => document.querySelector("#counters tbody")?.textContent?.includes("gray_router.rule.all-users.matched"));
    await page.screenshot({ path: join(tmpdir(), "graywall-ui-counters.png"), fullPage: true });
  });
});
