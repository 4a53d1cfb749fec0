// Headless Debian Chromium (playwright-core): sign in to the portal through the login page and photograph it at
// desktop width and at 375 px. With LAUNCH_PATH, that page (an app's IdP-initiated launch) is opened next from the
// same session and photographed too. Prints one JSON line with the page's headings and screenshot paths.
//
//   node portal.mjs BASE_URL USERNAME PASSWORD SHOTS_DIR NAME [LAUNCH_PATH]
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [base, username, password, shots, name, launch] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const out = { shots: [] };
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${base}/portal`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/portal`);
  out.headings = await page.getByRole("heading", { level: 2 }).allInnerTexts();
  out.external = await page.locator("ul.external li").allInnerTexts();
  for (const [suffix, size] of [["desktop", { width: 1280, height: 800 }], ["375", { width: 375, height: 740 }]]) {
    await page.setViewportSize(size);
    const path = join(shots, `${name}-${suffix}.png`);
    await page.screenshot({ path, fullPage: true });
    out.shots.push(path);
  }
  if (launch) {
    await page.setViewportSize({ width: 1280, height: 800 });
    const r = await page.goto(`${base}${launch}`);
    out.launch_status = r ? r.status() : null;
    out.launch_heading = await page.getByRole("heading", { level: 1 }).first().innerText();
    out.launch_text = await page.locator("main, body").first().innerText();
    for (const [suffix, size] of [["desktop", { width: 1280, height: 800 }], ["375", { width: 375, height: 740 }]]) {
      await page.setViewportSize(size);
      const path = join(shots, `${name}-launch-${suffix}.png`);
      await page.screenshot({ path, fullPage: true });
      out.shots.push(path);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 1) {
        (out.overflow ||= []).push(`launch@${size.width}: ${overflow}px`);
      }
    }
  }
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e).slice(0, 800);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
