// The console's Explain page in headless Debian Chromium driven by playwright-core: an admin signs in, opens
// Explain from the navigation, asks about USER reaching RESOURCE_LABEL from each address in SOURCES (comma
// separated), and the page's answer (heading, summary, steps, the policies table) is reported for each. Screenshots
// at 1280 and 375 px go to OUT_DIR; horizontal overflow and CSP reports are collected. Prints one JSON line.
//
//   node explain.mjs BASE_URL ADMIN_EMAIL ADMIN_PASSWORD USER RESOURCE_LABEL SOURCES OUT_DIR
import { chromium } from "../saml/browser/node_modules/playwright-core/index.mjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [base, email, password, user, resourceLabel, sources, outDir] = process.argv.slice(2);
const out = { screenshots: [], answers: [] };
mkdirSync(outDir, { recursive: true });
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const cspErrors = [];

async function shoot(page, name) {
  for (const [label, width] of [["desktop", 1280], ["375", 375]]) {
    await page.setViewportSize({ width, height: 900 });
    const file = join(outDir, `explain-${name}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    out.screenshots.push(file);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 1) {
      (out.overflow ||= []).push(`${name}@${width}: ${overflow}px`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });
  await page.goto(`${base}/console/login`);
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Explain" }).click();
  await shoot(page, "empty");
  for (const [i, source] of sources.split(",").entries()) {
    await page.getByLabel("User", { exact: true }).fill(user);
    await page.getByLabel("Resource").selectOption({ label: resourceLabel });
    await page.getByLabel("Source address").fill(source);
    await page.getByRole("button", { name: "Explain" }).click();
    const answer = {
      source,
      heading: await page.locator("#answer").innerText(),
      summary: await page.locator("section p[role=status], section p[role=alert]").first().innerText(),
      steps: await page.locator("ol.steps li").allInnerTexts(),
      policies: [],
    };
    for (const row of await page.locator("table tbody tr").all()) {
      answer.policies.push(await row.locator("td").allInnerTexts());
    }
    out.answers.push(answer);
    await shoot(page, `answer-${i}`);
  }
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e);
} finally {
  out.csp_errors = cspErrors;
  await browser.close();
  console.log(JSON.stringify(out));
}
