// The console's settings pages in headless Debian Chromium driven by playwright-core: the password policy (the
// user form's hint follows it, a too-short password is refused next to its field), the org settings (a value
// the core refuses is shown next to its field), admins (create a help-desk admin, reset their password, the last
// administrator not demoted, a deletion after its confirmation), an API key shown once and used with curl until
// it is deleted, and a SCIM token scoped to a group's members, used with curl before and after its scope is
// widened. Then the help-desk admin, in a second browser context, finds no write controls and has a forged post
// refused by the core. Screenshots of every page at 1280 and 375 px go to OUT_DIR; horizontal overflow and CSP
// reports are collected. Prints one JSON line.
//
//   node settings.mjs BASE_URL ADMIN_EMAIL ADMIN_PASSWORD CA_PEM OUTSIDER_ID MEMBER_ID OUT_DIR
import { chromium } from "../saml/browser/node_modules/playwright-core/index.mjs";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [base, email, password, caPem, outsiderId, memberId, outDir] = process.argv.slice(2);
const HELP_EMAIL = "helpdesk@example.com";
const HELP_FIRST = "Help-Desk-First-Pass-1";
const HELP_RESET = "Help-Desk-Reset-Pass-22";
const HELP_OWN = "Help-Desk-Own-Password-333";
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
    const file = join(outDir, `settings-${name}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    out.screenshots.push(file);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 1) {
      (out.overflow ||= []).push(`${name}@${width}: ${overflow}px`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

// An independent HTTP client: curl with the server's CA. Returns [status, body].
function curl(method, path, token, body) {
  const args = ["-s", "--cacert", caPem, "-X", method, "-H", `Authorization: Bearer ${token}`,
    "-w", "\n%{http_code}", `${base}${path}`];
  if (body !== undefined) {
    args.push("-H", "Content-Type: application/scim+json", "--data", JSON.stringify(body));
  }
  const text = execFileSync("curl", args).toString();
  const cut = text.lastIndexOf("\n");
  return [Number(text.slice(cut + 1)), text.slice(0, cut)];
}

const title = (value) => ({
  schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  Operations: [{ op: "replace", path: "title", value }],
});

async function newPage(context) {
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

const fieldError = (page, name) => page.locator(`#f-${name}-error`).innerText();
const status = async (page) => (await page.locator("p[role=status]").first().innerText());

try {
  const page = await newPage(await browser.newContext({ ignoreHTTPSErrors: true }));
  await signIn(page, email, password);
  await page.goto(`${base}/console/settings`);
  out.hub_heading = await page.getByRole("heading", { level: 1 }).innerText();
  await shoot(page, "hub");

  // 1. Password policy: a value the core refuses, then a longer minimum that the user form follows.
  await page.getByLabel("Minimum length (characters)").fill("0");
  await page.getByRole("button", { name: "Save password policy" }).click();
  out.policy_error = await fieldError(page, "min_length");
  await shoot(page, "policy-refused");
  await page.getByLabel("Minimum length (characters)").fill("16");
  await page.getByRole("button", { name: "Save password policy" }).click();
  out.policy_saved = (await status(page)).includes("Password policy saved");
  await page.goto(`${base}/console/users/new`);
  out.user_password_hint = await page.locator("#f-password-hint").innerText();
  await page.getByLabel("User name").fill("dana");
  await page.getByLabel("E-mail").fill("dana@example.com");
  await page.getByLabel("First name").fill("Dana");
  await page.getByLabel("Last name").fill("Short");
  await page.getByLabel("Password", { exact: true }).fill("Fourteen-Ch4rs");
  await page.getByRole("button", { name: "Create user" }).click();
  out.short_password_error = await fieldError(page, "password");
  await shoot(page, "user-short-password");

  // 2. Org settings: an enrolment period the core refuses is shown next to its field; then the idle lifetime.
  await page.goto(`${base}/console/settings`);
  await page.getByLabel("MFA enrolment period (days)").fill("0");
  await page.getByLabel("Session idle lifetime (minutes)").fill("45");
  await page.getByRole("button", { name: "Save organisation settings" }).click();
  out.org_error = await fieldError(page, "mfa_enrolment_days");
  out.org_kept_typed_value = await page.getByLabel("Session idle lifetime (minutes)").inputValue();
  await shoot(page, "org-refused");
  await page.getByLabel("MFA enrolment period (days)").fill("10");
  await page.getByRole("button", { name: "Save organisation settings" }).click();
  out.org_saved = (await status(page)).includes("Organisation settings saved");
  out.idle_after = await page.getByLabel("Session idle lifetime (minutes)").inputValue();

  // 3. Admins: create a help-desk admin, reset their password (one-time), refuse to demote the last administrator.
  await page.goto(`${base}/console/settings/admins`);
  await page.getByLabel("E-mail").fill(HELP_EMAIL);
  await page.getByLabel("Name", { exact: true }).fill("Help Desk");
  await page.getByLabel("Role").selectOption("help_desk");
  await page.getByLabel("Initial password").fill(HELP_FIRST);
  await shoot(page, "admins");
  await page.getByRole("button", { name: "Create admin" }).click();
  out.admin_created = (await status(page)).includes("Admin created");
  out.help_admin_path = new URL(page.url()).pathname;
  await page.getByLabel("New password").fill(HELP_RESET);
  await page.getByRole("button", { name: "Reset password" }).click();
  out.password_reset = (await status(page)).includes("Password reset");
  out.password_one_time = (await page.locator("section.summary").innerText()).includes("one-time");
  await shoot(page, "admin-detail");
  await page.goto(`${base}/console/settings/admins`);
  await page.getByRole("row", { name: new RegExp(email) }).getByRole("link").click();
  await page.getByLabel("Role").selectOption("read_only");
  await page.getByRole("button", { name: "Save role" }).click();
  out.demote_error = await fieldError(page, "role");
  await shoot(page, "admin-demote-refused");
  // A second admin, deleted after the confirmation.
  await page.goto(`${base}/console/settings/admins`);
  await page.getByLabel("E-mail").fill("temp@example.com");
  await page.getByRole("button", { name: "Create admin" }).click();
  await page.getByRole("link", { name: "Delete this admin" }).click();
  await shoot(page, "admin-delete");
  await page.getByRole("button", { name: "Delete admin" }).click();
  out.admin_deleted = (await status(page)).includes("Admin deleted");
  out.admins_after = await page.locator("table tbody tr td:first-child a").allInnerTexts();

  // 4. An API key: its token shown once, working with curl until it is deleted.
  await page.goto(`${base}/console/settings/api-keys`);
  await page.getByLabel("Name").fill("ci");
  await page.getByRole("button", { name: "Create API key" }).click();
  const apiToken = (await page.locator("#new-token").innerText()).trim();
  out.api_token = apiToken;
  await shoot(page, "api-key-created");
  out.api_with_key = curl("GET", "/api/v1/users", apiToken)[0];
  await page.goto(`${base}/console/settings/api-keys`);
  out.api_token_shown_again = (await page.content()).includes(apiToken);
  out.api_key_listed = await page.getByRole("row", { name: /^ci / }).count();
  await page.getByRole("link", { name: "Delete API key ci" }).click();
  await shoot(page, "api-key-delete");
  await page.getByRole("button", { name: "Delete API key" }).click();
  out.api_key_deleted = (await status(page)).includes("API key deleted");
  out.api_after_delete = curl("GET", "/api/v1/users", apiToken)[0];
  await shoot(page, "api-keys");

  // 5. A SCIM token for the members of `contractors`: refused outside it; then its scope widened.
  await page.goto(`${base}/console/settings/scim-tokens`);
  await page.getByLabel("Name", { exact: true }).fill("broken");
  await page.getByLabel("Members of the groups chosen below").check();
  await page.getByRole("button", { name: "Create SCIM token" }).click();
  out.scope_error = await page.locator("fieldset p[role=alert]").innerText();
  await page.getByLabel("Name", { exact: true }).fill("vendor");
  await page.getByLabel("Members of the groups chosen below").check();
  await page.getByLabel("contractors", { exact: true }).check();
  await page.getByRole("button", { name: "Create SCIM token" }).click();
  const scimToken = (await page.locator("#new-token").innerText()).trim();
  out.scim_token = scimToken;
  out.scim_scope_listed = await page.getByRole("row", { name: /vendor/ }).innerText();
  await shoot(page, "scim-token-created");
  const outsider = curl("PATCH", `/scim/v2/Users/${outsiderId}`, scimToken, title("Outsider"));
  out.scim_outsider = outsider[0];
  out.scim_outsider_detail = outsider[1];
  out.scim_member = curl("PATCH", `/scim/v2/Users/${memberId}`, scimToken, title("Contractor"))[0];
  await page.goto(`${base}/console/settings/scim-tokens`);
  out.scim_token_shown_again = (await page.content()).includes(scimToken);
  await page.getByRole("link", { name: "vendor" }).click();
  out.scim_token_path = new URL(page.url()).pathname;
  await page.getByLabel("All regular users").check();
  await page.getByRole("button", { name: "Save scope" }).click();
  out.scope_saved = (await status(page)).includes("Scope saved");
  await shoot(page, "scim-token-detail");
  out.scim_outsider_after = curl("PATCH", `/scim/v2/Users/${outsiderId}`, scimToken, title("Widened"))[0];
  await page.getByRole("link", { name: "Delete this token" }).click();
  await shoot(page, "scim-token-delete");
  await page.goto(`${base}/console/settings/scim-tokens`);
  await shoot(page, "scim-tokens");

  // 6. The help-desk admin: the reset password is one-time; no write controls; a forged post refused.
  const help = await newPage(await browser.newContext({ ignoreHTTPSErrors: true }));
  await signIn(help, HELP_EMAIL, HELP_RESET);
  out.help_first_stop = new URL(help.url()).pathname;
  await help.getByLabel("Current password").fill(HELP_RESET);
  await help.getByLabel("New password").fill(HELP_OWN);
  await help.getByRole("button", { name: "Change password" }).click();
  out.help_writes = {};
  const pages = [["hub", "/console/settings"], ["admins", "/console/settings/admins"],
    ["admin", out.help_admin_path], ["api-keys", "/console/settings/api-keys"],
    ["scim-tokens", "/console/settings/scim-tokens"], ["scim-token", out.scim_token_path]];
  for (const [name, path] of pages) {
    await help.goto(`${base}${path}`);
    out.help_writes[name] = {
      buttons: await help.locator("main button").allInnerTexts(),
      post_forms: await help.locator("main form[method=post]").count(),
      inputs: await help.locator("main input:not([type=hidden]), main select, main textarea").count(),
      delete_links: await help.locator("main a.danger").count(),
    };
    await shoot(help, `helpdesk-${name}`);
  }
  const csrf = await help.locator("input[name=_csrf]").first().inputValue();
  const forged = await help.request.post(`${base}/console/settings/password-policy`, {
    form: { _csrf: csrf, min_length: "1", history: "0", max_age_days: "0", expiry_warning_days: "0",
      lockout_max_failures: "0", lockout_lock_minutes: "0" },
  });
  out.forged_policy_status = forged.status();
  out.forged_policy_text = (await forged.text()).match(/your role does not allow[^<]*/)?.[0] || "";
  const forgedAdmin = await help.request.post(`${base}/console/settings/admins`, {
    form: { _csrf: csrf, email: "mallory@example.com", role: "administrator", password: "Mallory-Password-12345" },
  });
  out.forged_admin_status = forgedAdmin.status();
  out.forged_admin_text = (await forgedAdmin.text()).match(/your role does not allow[^<]*/)?.[0] || "";
  const noCsrf = await help.request.post(`${base}/console/settings/org`, { form: { name: "Taken over" } });
  out.missing_csrf_status = noCsrf.status();
  out.csp_errors = cspErrors;
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
