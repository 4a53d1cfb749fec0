// Headless Debian Chromium (playwright-core) through the self-service pages a user reaches from mail and the
// portal: the activation link (rules shown before the fields), forgot password, TOTP enrolment with recovery
// codes, signing in with a recovery code, and replacing the authenticator. Every page is photographed at desktop
// width and at 375 px into SHOTS. Prints one JSON line.
//
//   node selfservice.mjs BASE_URL ACTIVATION_LINK USERNAME NEW_PASSWORD SHOTS_DIR
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [base, activation, username, password, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const out = { shots: [] };
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const totp = (secret) => execFileSync("oathtool", ["--totp", "-b", secret]).toString().trim();
// A code of the next 30 s period, so a code just used is not refused as a replay.
const nextPeriod = () => new Promise((r) => setTimeout(r, (31 - (Math.floor(Date.now() / 1000) % 30)) * 1000));

try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  // Photograph the page as it is now at both widths.
  const shoot = async (name) => {
    for (const [suffix, size] of [["desktop", { width: 1280, height: 800 }], ["375", { width: 375, height: 740 }]]) {
      await page.setViewportSize(size);
      const path = join(shots, `${name}-${suffix}.png`);
      await page.screenshot({ path, fullPage: true });
      out.shots.push(path);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  };

  // 1. The activation link: the account's name and the rules come before the fields.
  await page.goto(activation);
  out.activation_title = await page.getByRole("heading", { level: 1 }).innerText();
  out.rules_shown = (await page.locator("#rules li").count()) > 0;
  await shoot("activate");
  await page.getByLabel("New password", { exact: true }).fill(password);
  await page.getByLabel("Repeat the new password").fill(password);
  await page.getByRole("button", { name: "Activate" }).click();
  out.activated = await page.getByRole("heading", { level: 1 }).innerText();
  await shoot("activated");

  // 2. Forgot password: the form, and the answer (the same for every address).
  await page.goto(`${base}/login`);
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await shoot("forgot");
  await page.getByLabel("Username or e-mail").fill("someone-unknown@example.com");
  await page.getByRole("button", { name: "Send the link" }).click();
  out.forgot_answer = await page.getByRole("heading", { level: 1 }).innerText();
  await shoot("forgot-sent");

  // 3. Sign in, set up TOTP: the recovery codes are shown once.
  await page.goto(`${base}/portal`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/portal`);
  await page.getByRole("button", { name: "Set up TOTP" }).click();
  const secret = (await page.locator("#totp-secret").innerText()).trim();
  await page.getByLabel("Verification code").fill(totp(secret));
  await page.getByRole("button", { name: "Confirm" }).click();
  const codes = await page.locator("#recovery-codes code").allInnerTexts();
  out.recovery_codes_shown = codes.length;
  await shoot("recovery-codes");
  await page.reload();
  out.codes_shown_again = await page.locator("#recovery-codes").count();

  // 4. Sign out; sign in with a recovery code in place of the TOTP code.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.goto(`${base}/login`);
  await page.getByLabel("Username or e-mail").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await shoot("totp-step");
  await page.getByLabel("Verification code").fill(codes[0]);
  await page.getByRole("button", { name: "Verify" }).click();
  await page.waitForURL(`${base}/portal`);
  out.signed_in_with_recovery_code = true;
  out.codes_left_text = await page.getByText("Recovery codes left").innerText();

  // 5. Replace the authenticator: password and a recovery code, then the new secret's code.
  await page.getByText("Replace your authenticator").click();
  await page.getByLabel("Your password").fill(password);
  await page.getByLabel("Code from your authenticator, or a recovery code").fill(codes[1]);
  await shoot("replace-form");
  await page.getByRole("button", { name: "Set up a new authenticator" }).click();
  const newSecret = (await page.locator("#totp-secret").innerText()).trim();
  out.new_secret_differs = newSecret !== secret;
  await shoot("replace-scan");
  await nextPeriod();
  await page.getByLabel("Verification code").fill(totp(newSecret));
  await page.getByRole("button", { name: "Confirm" }).click();
  out.replaced_message = (await page.locator("p[role=status]").first().innerText()).trim();
  out.new_codes = await page.locator("#recovery-codes code").count();
  const fresh = await page.locator("#recovery-codes code").allInnerTexts();
  out.new_codes_differ = !fresh.includes(codes[2]);
  await shoot("replaced");
  out.new_secret = newSecret;
  out.old_unused_code = codes[2];
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e).slice(0, 800);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
