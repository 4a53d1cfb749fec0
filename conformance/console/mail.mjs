// Activation links and the mail page of the console in headless Debian Chromium driven by playwright-core.
// MODE `handover` (no mail server): the user page's "Send activation link" shows the link once, in a box with a
// copy button; the Mail page says no mail server is configured and offers no test. MODE `mailed` (a mail server
// that accepts nothing): the link is mailed, or shown when asked for; the Mail page lists the queue with each
// message's failed attempt, queues a test message, refuses an address that is not one, and a read-only admin
// (second browser context) gets neither the activation buttons nor the test form. Screenshots at 1280 and 375 px
// go to OUT_DIR; horizontal overflow and CSP reports are collected. Prints one JSON line.
//
//   node mail.mjs BASE_URL ADMIN_EMAIL ADMIN_PASSWORD USER_ID MODE OUT_DIR [READONLY_EMAIL READONLY_PASSWORD]
import { chromium } from "../saml/browser/node_modules/playwright-core/index.mjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [base, email, password, userId, mode, outDir, roEmail, roPassword] = process.argv.slice(2);
const out = { screenshots: [] };
mkdirSync(outDir, { recursive: true });
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const cspErrors = [];

// Every page is photographed at 1280 px and at 375 px (a phone), full length, and checked for horizontal overflow.
async function shoot(page, name) {
  for (const [label, width] of [["desktop", 1280], ["375", 375]]) {
    await page.setViewportSize({ width, height: 900 });
    const file = join(outDir, `mail-${mode}-${name}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    out.screenshots.push(file);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 1) {
      (out.overflow ||= []).push(`${name}@${width}: ${overflow}px`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

async function newContext() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const page = await context.newPage();
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });
  return page;
}

async function signIn(page, who, pw) {
  await page.goto(`${base}/console/login`);
  await page.getByLabel("E-mail").fill(who);
  await page.getByLabel("Password").fill(pw);
  await page.getByRole("button", { name: "Sign in" }).click();
}

const status = async (page) => (await page.locator("main p[role=status]").first().innerText());

// The queue's rows as cell texts, once every message has had its first attempt (at most 20 s).
async function queueRows(page) {
  const deadline = Date.now() + 20000;
  for (;;) {
    await page.goto(`${base}/console/settings/mail`);
    const rows = [];
    for (const row of await page.locator("table.mail tbody tr").all()) {
      rows.push(await row.locator("td").allInnerTexts());
    }
    if ((rows.length > 0 && rows.every((r) => r[2] !== "0")) || Date.now() > deadline) {
      return rows;
    }
    await page.waitForTimeout(300);
  }
}

// The link in the box, what the box says, and what its copy button puts on the clipboard.
async function handedOver(page, name) {
  const link = (await page.locator("#activation-link").innerText()).trim();
  out[`${name}_link`] = link;
  out[`${name}_text`] = await page.locator("section.once").innerText();
  await page.getByRole("button", { name: "Copy link" }).click();
  out[`${name}_copied`] = (await page.evaluate(() => navigator.clipboard.readText())) === link;
  out[`${name}_copy_button`] = await page.locator("section.once button").innerText();
  await shoot(page, name);
  await page.goto(`${base}/console/users/${userId}`);
  out[`${name}_shown_again`] = (await page.content()).includes(link);
}

try {
  const page = await newContext();
  await signIn(page, email, password);
  await page.goto(`${base}/console/users/${userId}`);
  out.actions = await page.locator("main section", { has: page.getByRole("heading", { name: "Actions" }) })
    .locator("button").allInnerTexts();
  out.actions_hint = await page.locator("main section", { has: page.getByRole("heading", { name: "Actions" }) })
    .locator("p.hint").innerText();
  await shoot(page, "user-pending");
  await page.getByRole("button", { name: "Send activation link" }).click();
  if (mode === "handover") {
    await handedOver(page, "handover");
  } else {
    out.mailed_note = await status(page);
    out.mailed_path = new URL(page.url()).pathname + new URL(page.url()).search;
    out.mailed_page_has_link = (await page.content()).includes("token=");
    await shoot(page, "user-mailed");
    await page.getByRole("button", { name: "Show a link to hand over" }).click();
    await handedOver(page, "asked");
  }

  await page.goto(`${base}/console/settings`);
  out.mail_card = await page.locator("a.card[href='/console/settings/mail']").innerText();
  await shoot(page, "settings");
  await page.locator("a.card[href='/console/settings/mail']").click();
  out.mail_heading = await page.getByRole("heading", { level: 1 }).innerText();
  out.mail_server = await page.locator("main section").first().innerText();
  out.test_forms = await page.getByRole("button", { name: "Send test message" }).count();
  if (mode === "handover") {
    out.queue_text = await page.locator("main section").nth(1).innerText();
    await shoot(page, "page-off");
    // Even forged, a test needs a mail server: the core says so.
    const csrf = await page.locator("input[name=_csrf]").first().inputValue();
    const forged = await page.request.post(`${base}/console/settings/mail`, { form: { _csrf: csrf, to: "ops@example.com" } });
    out.forged_test_status = forged.status();
    out.forged_test_text = (await forged.text()).match(/no mail server is configured[^<]*/)?.[0] || "";
  } else {
    out.test_default_to = await page.getByLabel("To").inputValue();
    await page.getByLabel("To").fill("ops@example.com");
    await page.getByRole("button", { name: "Send test message" }).click();
    out.test_queued = await status(page);
    out.rows = await queueRows(page);
    out.queue_status = await page.locator("main section p[role=status]").innerText();
    out.queue_shows_link = (await page.content()).includes("token=");
    out.row_links = await page.locator("table.mail tbody a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
    await shoot(page, "page-queue");
    // An address the core refuses is shown next to the field, typed value kept.
    const csrf = await page.locator("input[name=_csrf]").first().inputValue();
    const refused = await page.request.post(`${base}/console/settings/mail`, { form: { _csrf: csrf, to: "nobody" } });
    out.refused_status = refused.status();
    await page.setContent(await refused.text());
    out.refused_error = await page.locator("#f-to-error").innerText();
    out.refused_kept = await page.getByLabel("To").inputValue();

    // A read-only admin: the queue, but no activation buttons and no test form; a forged test refused.
    const ro = await newContext();
    await signIn(ro, roEmail, roPassword);
    await ro.goto(`${base}/console/users/${userId}`);
    out.readonly_user_buttons = await ro.locator("main button").allInnerTexts();
    await ro.goto(`${base}/console/settings/mail`);
    out.readonly_rows = await ro.locator("table.mail tbody tr").count();
    out.readonly_mail_buttons = await ro.locator("main button").allInnerTexts();
    await shoot(ro, "page-readonly");
    const roCsrf = await ro.locator("input[name=_csrf]").first().inputValue();
    const forged = await ro.request.post(`${base}/console/settings/mail`, { form: { _csrf: roCsrf, to: "ops@example.com" } });
    out.readonly_forged_status = forged.status();
    out.readonly_forged_text = (await forged.text()).match(/your role does not allow[^<]*/)?.[0] || "";
    const activation = await ro.request.post(`${base}/console/users/${userId}/action`, { form: { _csrf: roCsrf, do: "activation_hand_over" } });
    out.readonly_activation_status = activation.status();
    out.readonly_activation_has_link = (await activation.text()).includes("token=");
  }
  out.csp_errors = cspErrors;
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
