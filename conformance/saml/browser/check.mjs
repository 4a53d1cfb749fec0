// Headless Debian Chromium, driven by playwright-core, through the Stratus login page and user portal:
// sign in, enrol TOTP by scanning the QR code on the page (zbarimg decodes a screenshot of it, oathtool makes the
// code), launch an app from its tile, and sign in again with the TOTP step. The SP's ACS is intercepted so the
// SAML Response the browser posts can be checked. playwright-core gives every launch a new empty profile. Prints one JSON line.
//
//   node check.mjs BASE_URL USERNAME PASSWORD APP_NAME ACS_URL
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, username, password, appName, acs] = process.argv.slice(2);
const out = {};
const work = mkdtempSync(join(tmpdir(), "stratus-browser-"));
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const posted = [];
  await page.route(`${new URL(acs).origin}/**`, async (route) => {
    posted.push(route.request().postData() || "");
    await route.fulfill({ status: 200, contentType: "text/html", body: "<h1>SP received the response</h1>" });
  });

  // 1. The portal sends an unknown browser to the login page; sign in with the labelled fields.
  await page.goto(`${base}/portal`);
  out.login_url = new URL(page.url()).pathname;
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/portal`);
  out.portal_heading = await page.getByRole("heading", { level: 1 }).innerText();
  out.deadline_shown = (await page.content()).includes("Your organisation requires TOTP. Set it up before");

  // 2. Enrol TOTP: scan the QR code, type the code.
  await page.getByRole("button", { name: "Set up TOTP" }).click();
  const shot = join(work, "qr.png");
  await page.locator("#totp-qr").screenshot({ path: shot });
  const uri = execFileSync("zbarimg", ["--raw", "-q", shot]).toString().trim();
  out.scanned_uri_scheme = uri.split(":")[0];
  const secret = new URL(uri).searchParams.get("secret");
  out.scanned_matches_shown = secret === (await page.locator("#totp-secret").innerText()).trim();
  const code = () => execFileSync("oathtool", ["--totp", "-b", secret]).toString().trim();
  await page.getByLabel("Verification code").fill(code());
  await page.getByRole("button", { name: "Confirm" }).click();
  out.enrolled = (await page.locator("p[role=status]").innerText()).includes("TOTP is set up");

  // 3. Launch the app from its tile: the browser posts the SAML Response to the SP.
  await page.getByRole("link", { name: appName }).click();
  await page.waitForURL(acs);
  const form = new URLSearchParams(posted[0] || "");
  const xml = Buffer.from(form.get("SAMLResponse") || "", "base64").toString();
  out.launch_success = xml.includes("urn:oasis:names:tc:SAML:2.0:status:Success");
  out.launch_destination = (xml.match(/Destination="([^"]+)"/) || [])[1];
  out.launch_relay_state = form.get("RelayState");

  // 4. Sign out, then sign in again with the e-mail address instead of the user name: now the TOTP step is
  // asked for.
  await page.goto(`${base}/portal`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.goto(`${base}/login`);
  await page.getByLabel("Username or e-mail").fill(`${username.toUpperCase()}@example.com`);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  out.second_login_asks_code = await page.getByLabel("Verification code").isVisible();
  // The enrolment used this period's code; wait for the next one so it is not refused as a replay.
  await new Promise((r) => setTimeout(r, (31 - (Math.floor(Date.now() / 1000) % 30)) * 1000));
  await page.getByLabel("Verification code").fill(code());
  await page.getByRole("button", { name: "Verify" }).click();
  await page.waitForURL(`${base}/portal`);
  out.second_login_portal = true;

  // 5. Change the password in the portal: the policy's message for a weak one, then a good one.
  const change = async (next) => {
    await page.getByLabel("Current password", { exact: true }).fill(password);
    await page.getByLabel("New password", { exact: true }).fill(next);
    await page.getByLabel("Repeat the new password").fill(next);
    await page.getByRole("button", { name: "Change password" }).click();
    return (await page.locator("p[role=status]").innerText()).trim();
  };
  out.weak_password_message = await change("weak");
  out.password_changed_message = await change("A-Much-Better-Passphrase-4");
  await page.goto(`${base}/portal`);
  out.signed_in_after_own_change = new URL(page.url()).pathname === "/portal";
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e).slice(0, 800);
} finally {
  await browser.close();
  rmSync(work, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
