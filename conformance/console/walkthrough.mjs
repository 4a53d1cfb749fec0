// The README's first minutes, entirely in the admin console, in headless Debian Chromium driven by
// playwright-core: open the root page, sign in with the bootstrap admin's one-time password and replace it,
// enrol TOTP by scanning the QR code (zbarimg reads a screenshot, oathtool makes codes), sign in again with the
// code, create a Bind DN user and a user, create a group, bind it to LDAP and add both, copy the ldapsearch
// details from the LDAP page and run ldapsearch, import a CSV with good, pending and bad rows and download the
// results, find the bind in Insights, and check that a read-only admin gets no write controls and that the
// server refuses its writes. Screenshots of every page at desktop width and 375 px go to OUT_DIR.
// Prints one JSON line.
//
//   node walkthrough.mjs BASE_URL ADMIN_EMAIL ONE_TIME_PASSWORD READONLY_EMAIL READONLY_PASSWORD LDAP_HOSTPORT OUT_DIR
import { chromium } from "../saml/browser/node_modules/playwright-core/index.mjs";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [base, email, oneTime, roEmail, roPassword, ldapHostPort, outDir] = process.argv.slice(2);
const NEW_PASSWORD = "Console-Admin-Pass-42";
const out = { screenshots: [] };
mkdirSync(outDir, { recursive: true });
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

// Every page is photographed at 1280 px and at 375 px (a phone), full length, and checked for horizontal overflow.
async function shoot(page, name) {
  for (const [label, width] of [["desktop", 1280], ["375", 375]]) {
    await page.setViewportSize({ width, height: 900 });
    const file = join(outDir, `${name}-${label}.png`);
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
  const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
  const page = await context.newPage();
  const cspErrors = [];
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });

  // 1. The root page offers the console; sign in with the one-time password, which must be replaced first.
  await page.goto(`${base}/`);
  await shoot(page, "root");
  await page.getByRole("link", { name: "Admin console" }).click();
  await shoot(page, "login");
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(oneTime);
  await page.getByRole("button", { name: "Sign in" }).click();
  out.first_stop = new URL(page.url()).pathname;
  await shoot(page, "password-one-time");
  await page.getByLabel("Current password").fill(oneTime);
  await page.getByLabel("New password").fill("short");
  await page.getByRole("button", { name: "Change password" }).click();
  out.weak_password_error = await page.locator(".field-error").first().innerText();
  await page.getByLabel("Current password").fill(oneTime);
  await page.getByLabel("New password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Change password" }).click();
  out.password_changed = (await page.locator("p[role=status]").first().innerText()).includes("password has been changed");

  // 2. TOTP: scan the QR code on the account page and confirm with a code.
  await page.getByRole("button", { name: "Set up TOTP" }).click();
  const qr = join(outDir, "qr.png");
  await page.locator("#totp-qr").screenshot({ path: qr });
  const uri = execFileSync("zbarimg", ["--raw", "-q", qr]).toString().trim();
  const secret = new URL(uri).searchParams.get("secret");
  out.qr_matches_key = secret === (await page.locator("#totp-secret").innerText()).trim();
  await shoot(page, "account-totp");
  const code = () => execFileSync("oathtool", ["--totp", "-b", secret]).toString().trim();
  await page.getByLabel("Verification code").fill(code());
  await page.getByRole("button", { name: "Confirm" }).click();
  out.totp_on = (await page.content()).includes("TOTP is set up");

  // 3. Sign out and in again: the code is asked for after the password.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  out.code_asked = (await page.getByRole("heading", { level: 1 }).innerText()) === "Verification code";
  await shoot(page, "login-totp");
  // A code already used is refused (replay); wait for the next period.
  await new Promise((r) => setTimeout(r, 1000 * (31 - (Math.floor(Date.now() / 1000) % 30))));
  await page.getByLabel("Verification code").fill(code());
  await page.getByRole("button", { name: "Verify" }).click();
  out.dashboard_heading = await page.getByRole("heading", { level: 1 }).innerText();
  await shoot(page, "dashboard");

  // 4. Users: a Bind DN service account and a user.
  async function newUser(name, password, bindDn) {
    await page.goto(`${base}/console/users/new`);
    await page.getByLabel("User name").fill(name);
    await page.getByLabel("E-mail").fill(`${name}@example.com`);
    await page.getByLabel("First name").fill(name[0].toUpperCase() + name.slice(1));
    await page.getByLabel("Last name").fill("Walkthrough");
    await page.getByLabel("Password", { exact: true }).fill(password);
    if (bindDn) await page.getByLabel(/LDAP Bind DN/).check();
    await page.getByRole("button", { name: "Create user" }).click();
    return (await page.locator("p[role=status]").first().innerText()).includes("User created");
  }
  await page.goto(`${base}/console/users/new`);
  await shoot(page, "user-new");
  out.svc_created = await newUser("svc", "Service-Account-Pass-9", true);
  out.ann_created = await newUser("ann", "Correct-Horse-Pass-9", false);
  await shoot(page, "user-detail");
  // A duplicate is refused next to its field, in the core's words.
  await page.goto(`${base}/console/users/new`);
  await page.getByLabel("User name").fill("ann");
  await page.getByLabel("E-mail").fill("ann2@example.com");
  await page.getByRole("button", { name: "Create user" }).click();
  out.duplicate_error = await page.locator(".field-error, p[role=alert]").first().innerText();
  await page.goto(`${base}/console/users?q=ann`);
  out.search_finds_ann = (await page.locator("table tbody tr").count()) === 1;
  await page.goto(`${base}/console/users`);
  await shoot(page, "users");

  // 5. A group bound to LDAP with both users.
  await page.goto(`${base}/console/groups/new`);
  await page.getByLabel("Name", { exact: true }).fill("ldap-users");
  await page.getByLabel("Linux group name").fill("ldap-users");
  await shoot(page, "group-new");
  await page.getByRole("button", { name: "Create group" }).click();
  await page.getByLabel("LDAP directory").check();
  await page.getByRole("button", { name: "Save access" }).click();
  out.bound = (await page.locator("p[role=status]").first().innerText()).includes("Access saved");
  await page.getByLabel("Add users").fill("sv");
  await page.getByRole("button", { name: "svc" }).click();
  out.suggested = (await page.getByLabel("Add users").inputValue()).trim() === "svc";
  await page.getByLabel("Add users").fill("svc ann");
  await page.getByRole("button", { name: "Add", exact: true }).click();
  out.members = await page.locator("section h2", { hasText: "Members" }).innerText();
  const reply = page.getByLabel(/RADIUS reply attributes/);
  await reply.fill("Tunnel-Pri");
  await page.getByRole("button", { name: "Tunnel-Private-Group-Id" }).click();
  out.attribute_suggested = await reply.inputValue();
  await shoot(page, "group-detail");
  await page.goto(`${base}/console/groups`);
  await shoot(page, "groups");

  // 6. The LDAP page's ldapsearch line, run as it is shown (with the password and port of this server).
  await page.goto(`${base}/console/ldap`);
  await shoot(page, "ldap");
  const line = await page.locator("pre code").innerText();
  const base_dn = line.match(/-b '([^']+)'/)[1];
  const bind_dn = line.match(/-D '([^']+)'/)[1];
  out.ldap_bind_dn = bind_dn;
  const found = execFileSync("ldapsearch", ["-LLL", "-H", `ldap://${ldapHostPort}`, "-x", "-D", bind_dn,
    "-w", "Service-Account-Pass-9", "-b", base_dn, "(uid=ann)", "uid", "mail"]).toString();
  out.ldapsearch_finds_ann = found.includes("uid: ann") && found.includes("mail: ann@example.com");

  // 7. CSV import: a good row, a row without password (pending) and a bad row; then the results file.
  const csv = join(outDir, "import.csv");
  writeFileSync(csv, "firstname,lastname,username,email,password\n" +
    "Bea,Good,bea,bea@example.com,Staple-Battery-Pass-9\n" +
    "Cy,Pending,cy,cy@example.com,\n" +
    "Dee,Bad,dee,not-an-email,Staple-Battery-Pass-9\n");
  await page.goto(`${base}/console/import`);
  await shoot(page, "import");
  await page.getByLabel("CSV file").setInputFiles(csv);
  await page.getByRole("button", { name: "Import" }).click();
  await page.getByRole("link", { name: "Download the results file" }).waitFor({ timeout: 60000 });
  out.import_summary = await page.locator("p[role=status]").first().innerText();
  out.import_badges = await page.locator("table .badge").allInnerTexts();
  await shoot(page, "import-results");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download the results file" }).click(),
  ]);
  const results = readFileSync(await download.path()).toString();
  out.results_file_lines = results.trim().split("\n").length;
  out.results_file_has_failure = results.includes("Failed:");

  // 8. Insights: the bind is there, filtered by user and type; export works.
  await page.goto(`${base}/console/insights?user=svc&type=ldap_bind`);
  out.insights_rows = await page.locator("table.events tbody tr").count();
  out.insights_first = await page.locator("table.events tbody tr").first().innerText();
  await shoot(page, "insights");
  const exported = await page.request.get(`${base}/console/insights/export?user=svc&type=ldap_bind&format=csv`);
  out.export_csv_header = (await exported.text()).split("\n")[0];

  await page.goto(`${base}/console`);
  const ldapRow = page.locator("tbody tr", { has: page.locator("th", { hasText: /^LDAP$/ }) });
  out.dashboard_ldap_succeeded = Number(await ldapRow.locator("td").first().innerText());
  await shoot(page, "dashboard-after");
  out.csp_errors = cspErrors;

  // 9. A read-only admin sees no write controls, and the server refuses a write it forges.
  const ro = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  await ro.goto(`${base}/console/login`);
  await ro.getByLabel("E-mail").fill(roEmail);
  await ro.getByLabel("Password").fill(roPassword);
  await ro.getByRole("button", { name: "Sign in" }).click();
  await ro.goto(`${base}/console/users`);
  out.readonly_new_user_link = await ro.getByRole("link", { name: "New user" }).count();
  await ro.getByRole("link", { name: "ann" }).click();
  out.readonly_buttons = await ro.locator("main button").allInnerTexts();
  await shoot(ro, "readonly-user");
  const csrf = await ro.locator("input[name=_csrf]").first().inputValue();
  const action = new URL(ro.url()).pathname + "/action";
  const forged = await ro.request.post(`${base}${action}`, { form: { _csrf: csrf, do: "suspend" } });
  out.readonly_forged_status = forged.status();
  out.readonly_forged_text = (await forged.text()).match(/your role does not allow[^<]*/)?.[0] || "";
  const noCsrf = await ro.request.post(`${base}${action}`, { form: { do: "suspend" } });
  out.missing_csrf_status = noCsrf.status();
  // An e-mail-shaped user name, as an IdP provisions it: kept as the sign-in name, the uid derived from it.
  await page.goto(`${base}/console/users/new`);
  await page.getByLabel("User name").fill("Jane.Doe@Example.com");
  await page.getByLabel("E-mail").fill("jane.doe@example.com");
  await page.getByLabel("First name").fill("Jane");
  await page.getByLabel("Last name").fill("Doe");
  await page.getByLabel("Password", { exact: true }).fill("Correct-Horse-Pass-9");
  await page.getByRole("button", { name: "Create user" }).click();
  out.login_name_summary = await page.locator("section.summary").first().innerText();
  await shoot(page, "user-detail-login-name");
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
